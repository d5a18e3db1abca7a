"""Distribution shift of a join: does keeping only the child rows that find a parent change the data?

Reported as metadata, not as a failing check: the KL divergence of each child column between all
child rows and the rows that joined, and each target's class balance before and after the join.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from featrix_pipeline.joins.codes import KeyMatch
from featrix_pipeline.spec import RelationshipSpec

MAX_SHIFT_COLUMNS = 30


def _bins(s: pd.Series, max_card: int | None = 200) -> tuple[np.ndarray, list[str]] | None:
    """Bin codes per row and labels: quantile bins for numbers, top-20 values + (other) for categories;
    the last bin is NULL. None for columns that cannot be binned (datetimes, high-cardinality text)."""
    t = s.dtype
    if pd.api.types.is_datetime64_any_dtype(t) or pd.api.types.is_timedelta64_dtype(t):
        return None
    numeric = pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)
    nunique = s.nunique(dropna=True)
    isna = s.isna().to_numpy()
    if numeric and nunique > 20:
        x = s.to_numpy(dtype="float64", na_value=np.nan)
        edges = np.unique(np.quantile(x[~isna], np.linspace(0, 1, 11)))
        codes = np.searchsorted(edges[1:-1], x, side="right")
        labels = [f"[{edges[i]:g}, {edges[i + 1]:g}{']' if i == len(edges) - 2 else ')'}" for i in range(len(edges) - 1)]
    elif numeric or (max_card is None or nunique <= max_card):
        top = s.value_counts(dropna=True).index[:20]
        codes = pd.Categorical(s, categories=top).codes.astype(np.int64)
        codes[(codes < 0) & ~isna] = len(top)
        labels = [str(v) for v in top] + ["(other)"]
    else:
        return None
    codes = np.where(isna, len(labels), codes)
    return codes, labels + ["NULL"]


def _kl(all_counts: np.ndarray, joined_counts: np.ndarray, labels: list[str]) -> dict:
    """KL(joined ‖ all) in bits with +0.5 smoothing, and the value whose share moved most."""
    b = len(labels)
    p = (all_counts + 0.5) / (all_counts.sum() + 0.5 * b)
    q = (joined_counts + 0.5) / (joined_counts.sum() + 0.5 * b)
    sa, sj = all_counts / max(all_counts.sum(), 1), joined_counts / max(joined_counts.sum(), 1)
    i = int(np.argmax(np.abs(sj - sa)))
    return {"kl_bits": float(np.sum(q * np.log2(q / p))), "most_shifted": labels[i],
            "share_all": float(sa[i]), "share_joined": float(sj[i])}


def distribution_shift(rel: RelationshipSpec, child: pd.DataFrame, parent: pd.DataFrame, m: KeyMatch,
                       target_columns: dict[str, pd.Series] | None) -> dict:
    """Per child column (first ``MAX_SHIFT_COLUMNS`` that can be binned) and per target: how the
    joined rows differ from all rows. The ten most shifted columns are listed under ``top``."""
    matched = m.matched
    out: dict = {"direction": "KL(joined child rows ‖ all child rows), bits", "joined_child_rows": int(matched.sum()),
                 "columns": {}, "top": [], "targets": {}}
    if not matched.any() or matched.all():
        out["note"] = "no child row joined" if not matched.any() else "every child row joined: no selection shift"
    else:
        out["columns"] = _column_shifts(rel, child, matched)
        out["top"] = sorted(({"column": c, **v} for c, v in out["columns"].items()), key=lambda r: -r["kl_bits"])[:10]
    for name, s in (target_columns or {}).items():
        out["targets"][name] = _target_shift(rel, child, parent, m, name, s)
    return out


def _column_shifts(rel: RelationshipSpec, child: pd.DataFrame, matched: np.ndarray) -> dict[str, dict]:
    """KL of each non-key child column that can be binned, up to ``MAX_SHIFT_COLUMNS`` columns."""
    columns: dict[str, dict] = {}
    for c in [c for c in child.columns if c not in rel.child_keys]:
        if len(columns) >= MAX_SHIFT_COLUMNS:
            break
        try:
            b = _bins(child[c])
        except (TypeError, ValueError):  # unhashable or unorderable values: skip the column
            b = None
        if b is not None:
            codes, labels = b
            all_counts = np.bincount(codes, minlength=len(labels))
            columns[c] = _kl(all_counts, np.bincount(codes[matched], minlength=len(labels)), labels)
    return columns


def _target_shift(rel: RelationshipSpec, child: pd.DataFrame, parent: pd.DataFrame, m: KeyMatch, name: str,
                  s: pd.Series) -> dict:
    """A target's class (or bin) shares before and after the join, and their KL divergence.

    The target belongs to the table its name starts with (``flights.arr_delay15``), or else to the
    table whose length it has. A parent-side target counts each parent row once per child row that
    joins it, as the joined table would hold it.
    """
    table = name.split(".", 1)[0] if "." in name else None
    if table not in (rel.child, rel.parent):
        table = rel.child if len(s) == len(child) else rel.parent if len(s) == len(parent) else None
    if table is None:
        return {"note": f"length {len(s):,} matches neither {rel.child} nor {rel.parent}; skipped"}
    try:
        b = _bins(s.reset_index(drop=True), max_card=None)
    except (TypeError, ValueError):
        b = None
    if b is None or len(s) != (len(child) if table == rel.child else len(parent)):
        return {"table": table, "note": "not a class or number aligned with its table; skipped"}
    codes, labels = b
    before = np.bincount(codes, minlength=len(labels))
    if table == rel.child:
        after = np.bincount(codes[m.matched], minlength=len(labels))
    else:  # each parent row appears once per child row that joins it
        weights = np.where(m.parent_codes >= 0, m.child_counts[np.maximum(m.parent_codes, 0)], 0)
        after = np.bincount(codes, weights=weights, minlength=len(labels)).astype(np.int64)
    keep = (before + after) > 0
    return {"table": table, "kl_bits": _kl(before, after, labels)["kl_bits"],
            "before": {l: float(v) for l, v, kp in zip(labels, before / max(before.sum(), 1), keep) if kp},
            "after": {l: float(v) for l, v, kp in zip(labels, after / max(after.sum(), 1), keep) if kp}}
