"""Is the random train/validation split fair? Per column, the KL divergence of the validation rows'
distribution from the training rows' (spec §13 "Distribution Drift Detection"), measured once on
the initial split: under 0.1 the two are nearly identical; 0.1–1 is moderate (review the split);
over 1 a warning (high shift); over 2 severe (investigate leakage, or structure — time order,
clusters of related rows — that a random split violates)."""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 10  # numeric columns: deciles of the training values
TOP_VALUES = 20  # other columns: the most frequent values, the rest pooled
SMOOTHING = 0.5  # counts added to every bin, so an empty bin does not make the divergence infinite
MIN_VALIDATION_ROWS = 200  # below this a fair random split reads 0.15-0.4 by sampling alone: no levels applied
LEVELS = ((2.0, "severe mismatch: investigate data leakage, or structure (time order, related rows) that a "
                "random split violates"),
          (1.0, "high distribution shift between training and validation rows"),
          (0.1, "moderate drift: review how rows are split"))


def _bins(train: pd.Series, val: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    if pd.api.types.is_numeric_dtype(train) and not pd.api.types.is_bool_dtype(train):
        t, v = pd.to_numeric(train, errors="coerce").astype(float), pd.to_numeric(val, errors="coerce").astype(float)
        edges = np.unique(np.nanquantile(t.to_numpy(), np.linspace(0, 1, BINS + 1))) if t.notna().any() else []
        if len(edges) > 2:
            cut = lambda s: np.where(s.isna(), len(edges), np.clip(np.searchsorted(edges[1:-1], s, side="right"),
                                                                   0, len(edges) - 2))
            return np.bincount(cut(t), minlength=len(edges) + 1), np.bincount(cut(v), minlength=len(edges) + 1)
    t, v = train.astype(str).where(train.notna(), None), val.astype(str).where(val.notna(), None)
    top = list(t.value_counts().index[:TOP_VALUES])
    codes = lambda s: np.where(s.isna(), len(top) + 1, s.map({k: i for i, k in enumerate(top)}).fillna(len(top)))
    return (np.bincount(codes(t).astype(int), minlength=len(top) + 2),
            np.bincount(codes(v).astype(int), minlength=len(top) + 2))


def split_divergence(df: pd.DataFrame, columns: list[str], train_idx, val_idx) -> dict[str, float]:
    """{column: KL(validation ‖ training) in nats} for the rows ``train_idx`` / ``val_idx`` of ``df``."""
    train_rows, val_rows = np.asarray(train_idx, dtype=int), np.asarray(val_idx, dtype=int)
    if not len(val_rows) or not len(train_rows):
        return {}
    out = {}
    for c in columns:
        if c not in df.columns:
            continue
        col = df[c].reset_index(drop=True)
        try:
            t, v = _bins(col.iloc[train_rows], col.iloc[val_rows])
        except (TypeError, ValueError):  # values that are neither numbers nor text (nested JSON, vectors)
            continue
        used = (t + v) > 0  # bins empty on both sides (no NaN, an unused edge) add nothing
        t, v = t[used], v[used]
        p, q = (v + SMOOTHING) / (v + SMOOTHING).sum(), (t + SMOOTHING) / (t + SMOOTHING).sum()
        out[c] = round(float(np.sum(p * np.log(p / q))), 4)
    return out


def split_warnings(kl: dict[str, float], n_validation: int = MIN_VALIDATION_ROWS) -> list[str]:
    """One line per column at or over 0.1, worst first, with the spec's reading of its level; none
    when fewer than ``MIN_VALIDATION_ROWS`` validation rows make the estimate mostly noise."""
    lines = []
    if n_validation < MIN_VALIDATION_ROWS:
        return lines
    for c, value in sorted(kl.items(), key=lambda kv: -kv[1]):
        for limit, meaning in LEVELS:
            if value > limit:
                lines.append(f"{'[WARN] ' if limit >= 1.0 else ''}train/validation split: column '{c}' KL {value:.2f} "
                             f"> {limit:g}: {meaning}")
                break
    return lines
