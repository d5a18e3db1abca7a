"""Regression intervals by split-conformal prediction on the validation rows.

The head predicts a mean and a variance per row; on the validation rows (never trained on) the
normalised residual ``r = |y - mean| / sigma`` is computed, and for each nominal level ``1 - a`` the
interval is ``mean +- q * sigma`` with ``q`` the ``ceil((n + 1)(1 - a)) / n`` empirical quantile of
``r`` (the finite-sample correction of split-conformal prediction). When the validation rows are
exchangeable with the rows predicted later, a new row falls inside with probability at least the
nominal level; dividing by the predicted sigma keeps intervals narrow where the model is sure and
wide where it is not. The validation rows also chose the head's best epoch, so the guarantee is
close to, not exactly, the textbook one (``bench/intervals.py`` measures it on held-out rows).

With fewer validation rows than a level needs (``n < 1 / a - 1``) that level's quantile is the
largest residual, said in the decisions, and its coverage is not guaranteed.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

LEVELS = (0.90, 0.95)  # nominal coverages every regression response carries
PRIMARY = 0.95  # the level of ``confidence_interval`` (and of ``std``)


def key(level: float) -> str:
    """The response key of a level: 0.9 → "90"."""
    return f"{round(level * 100):d}"


def z_of(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def conformal_quantiles(ratio: np.ndarray, decisions: list[str]) -> dict[str, float]:
    """``{level key: q}`` from the validation rows' normalised residuals ``ratio``."""
    r = np.asarray(ratio, dtype=np.float64)
    r = np.sort(r[~np.isnan(r)])  # an infinite ratio (σ underflowed) is the worst residual: it stays
    n, out = len(r), {}
    for level in LEVELS:
        if n == 0:
            out[key(level)] = z_of(level)
            decisions.append(f"[WARN] interval {key(level)}%: no validation rows to calibrate on; the model's own "
                             f"Gaussian σ is used (coverage not checked)")
            continue
        k = math.ceil((n + 1) * level)
        if k > n:
            decisions.append(f"[WARN] interval {key(level)}%: {n} validation rows are too few for split-conformal "
                             f"coverage at this level (needs {math.ceil(level / (1 - level) - 1e-9)}); the largest "
                             "validation residual is used")
            k = n
        out[key(level)] = max(float(min(r[k - 1], np.finfo(np.float64).max)), 1e-6)
    decisions.append("intervals: split-conformal on " f"{n:,} validation rows (residual / predicted σ): "
                     + ", ".join(f"{k}% → mean ± {q:.2f}σ" for k, q in out.items()))
    return out


def coverages(y_true: np.ndarray, frame) -> dict[str, float]:
    """``{"coverage_90": share, ...}``: the share of rows whose true value lies in its interval, for
    each level in the frame's ``intervals`` column (none when the frame has no intervals)."""
    if "intervals" not in frame.columns or len(frame) == 0:
        return {}
    y = np.asarray(y_true, dtype=np.float64)
    out = {}
    for k in frame["intervals"].iloc[0]:
        b = np.asarray([row[k] for row in frame["intervals"]], dtype=np.float64).reshape(-1, 2)
        out[f"coverage_{k}"] = float(np.mean((y >= b[:, 0]) & (y <= b[:, 1])))
    return out
