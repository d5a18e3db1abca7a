"""Target leakage: input columns that alone predict the target almost perfectly.

A column known only after the outcome (a delay column beside "delayed", a refund date beside
"churned") makes any model look perfect and useless in production. ``leaky_columns`` scores every
column *alone* against the target on rows it was not fitted on:

* each column becomes groups — its values (text, categories, booleans, numbers with at most
  ``MAX_GROUPS`` distinct values) or ``MAX_GROUPS`` quantile bins of a numeric or datetime
  column; a missing value is a group of its own;
* a per-group lookup is fitted on a seeded half of at most ``MAX_ROWS`` rows: the share of each
  class (classification) or the mean (regression) per group, the training-half value for a group
  it never saw;
* it is scored on the other half: ROC AUC (binary), accuracy (multiclass; it must also remove
  nearly all of the majority guess's errors, so a 99 % majority class is no leak by itself) or R²
  (regression). At or above ``threshold`` (0.99) the column is reported.

A column whose values are (almost) all distinct and not numeric — an id, a free-text field — is
skipped: a lookup on it memorises rows and cannot generalise. The cost is bounded: one pass of
factorising and counting per column over at most ``MAX_ROWS`` rows. Pure numpy/pandas/sklearn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score

from featrix_model.tasks import TaskType, resolve_kind

MAX_ROWS = 20_000
MAX_GROUPS = 64
THRESHOLD = 0.99
UNIQUE_SKIP = 0.9  # non-numeric columns with more distinct values than this share of rows are skipped
MIN_ROWS = 20  # fewer labelled rows: nothing can be measured
MULTICLASS_ERROR_SHARE = 0.1  # a leaky multiclass column leaves at most this share of the majority guess's errors


def leaky_columns(df: pd.DataFrame, target_values, kind: str = "auto", seed: int = 0, *,
                  threshold: float = THRESHOLD, max_rows: int = MAX_ROWS) -> list[dict]:
    """The columns of ``df`` that alone predict ``target_values`` (one per row, same order) with a
    held-out score ≥ ``threshold``, best first: {"column", "metric", "score", "held_out_rows", "how"}.
    ``kind``: "auto", "classification" or a TaskType value."""
    y = pd.Series(np.asarray(target_values, dtype=object)).reset_index(drop=True)
    df = df.reset_index(drop=True)
    if len(y) != len(df):
        raise ValueError(f"{len(y)} target values for {len(df)} rows")
    labelled = y.notna().to_numpy()
    df, y = df[labelled].reset_index(drop=True), y[labelled].reset_index(drop=True)
    if len(y) < MIN_ROWS or y.nunique() < 2:
        return []
    task, _ = resolve_kind(str(kind), y.infer_objects())
    rng = np.random.default_rng(seed)
    if len(y) > max_rows:
        keep = np.sort(rng.choice(len(y), size=max_rows, replace=False))
        df, y = df.iloc[keep].reset_index(drop=True), y.iloc[keep].reset_index(drop=True)
    fit = np.zeros(len(y), dtype=bool)
    fit[rng.permutation(len(y))[: len(y) // 2]] = True
    target = _target_array(y, task)
    found = []
    for column in df.columns:
        groups = _groups(df[column], fit)
        if groups is None:
            continue
        codes, how, values = groups
        metric, score = _score(task, codes, target, fit)
        direct = _direct(task, values, target, fit) if values is not None else None
        if direct is not None and (score is None or direct > score):
            score = direct
            how = "the value itself (linear in it)" if task == TaskType.REGRESSION else "the value itself (ranked)"
        if score is not None and score >= threshold:
            found.append({"column": str(column), "metric": metric, "score": round(float(score), 4),
                          "held_out_rows": int((~fit).sum()), "how": how})
    return sorted(found, key=lambda d: (-d["score"], d["column"]))


def _target_array(y: pd.Series, task: TaskType) -> np.ndarray:
    """Float values (regression) or class codes 0..k-1 (classification)."""
    if task == TaskType.REGRESSION:
        return pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
    return pd.factorize(y.astype(str), sort=True)[0]


def _groups(col: pd.Series, fit: np.ndarray) -> tuple[np.ndarray, str, np.ndarray | None] | None:
    """Group codes 0..g (missing values the last group), how they were made and, for a numeric
    column, its values as floats (NaN missing); None to skip the column."""
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        col = pd.Series(col.to_numpy(dtype="datetime64[ns]").view("int64").astype(float)).where(col.notna().to_numpy())
    numeric = pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)
    missing = col.isna().to_numpy().copy()
    if numeric:
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
        missing |= ~np.isfinite(values)
        distinct = np.unique(values[~missing])
        if len(distinct) == 0:
            return None
        if len(distinct) > MAX_GROUPS:
            train = values[fit & ~missing]
            if len(train) == 0:
                return None
            edges = np.unique(np.quantile(train, np.linspace(0, 1, MAX_GROUPS + 1)[1:-1]))
            codes = np.searchsorted(edges, np.where(missing, 0.0, values), side="right")
            values = np.where(missing, np.nan, values)
            return np.where(missing, len(edges) + 1, codes), f"{len(edges) + 1} quantile bins", values
        codes = np.searchsorted(distinct, np.where(missing, distinct[0], values))
        return np.where(missing, len(distinct), codes), "per value", np.where(missing, np.nan, values)
    text = col.astype(object).where(~missing, None).map(lambda v: None if v is None else str(v))
    present = int((~missing).sum())
    if present == 0 or text[~missing].nunique() > UNIQUE_SKIP * present:
        return None  # an id or free text: a lookup would only memorise
    codes = pd.factorize(text, use_na_sentinel=True)[0]
    return np.where(codes < 0, codes.max() + 1, codes), "per value", None


def _direct(task: TaskType, values: np.ndarray, target: np.ndarray, fit: np.ndarray) -> float | None:
    """A numeric column used as it is: its held-out AUC as a ranking, in the direction the fitted half
    shows (binary), or the R² of a line fitted on that half (regression); missing values take the
    fitted half's median. None for multiclass targets or when it cannot be measured."""
    if task == TaskType.MULTICLASS or not np.isfinite(values[fit]).any():
        return None
    x = np.where(np.isfinite(values), values, np.nanmedian(values[fit]))
    tr, te = fit, ~fit
    if task == TaskType.BINARY:
        if len(np.unique(target[tr])) < 2 or len(np.unique(target[te])) < 2:
            return None
        sign = 1.0 if roc_auc_score(target[tr] == 1, x[tr]) >= 0.5 else -1.0
        return float(roc_auc_score(target[te] == 1, sign * x[te]))
    ok_tr, ok_te = tr & np.isfinite(target), te & np.isfinite(target)
    if ok_tr.sum() < 2 or ok_te.sum() < 2 or np.ptp(x[ok_tr]) == 0 or np.ptp(target[ok_te]) == 0:
        return None
    slope, intercept = np.polyfit(x[ok_tr], target[ok_tr], 1)
    return float(r2_score(target[ok_te], slope * x[ok_te] + intercept))


def _score(task: TaskType, codes: np.ndarray, target: np.ndarray, fit: np.ndarray) -> tuple[str, float | None]:
    """The held-out score of a per-group lookup fitted on the ``fit`` rows."""
    n_groups = int(codes.max()) + 1
    tr, te = fit, ~fit
    count = np.bincount(codes[tr], minlength=n_groups).astype(float)
    if task == TaskType.REGRESSION:
        ok_tr, ok_te = tr & np.isfinite(target), te & np.isfinite(target)
        count = np.bincount(codes[ok_tr], minlength=n_groups).astype(float)
        total = np.bincount(codes[ok_tr], weights=target[ok_tr], minlength=n_groups)
        fallback = float(target[ok_tr].mean()) if ok_tr.any() else 0.0
        means = np.where(count > 0, total / np.maximum(count, 1), fallback)
        if ok_te.sum() < 2 or np.ptp(target[ok_te]) == 0:
            return "r2", None
        return "r2", float(r2_score(target[ok_te], means[codes[ok_te]]))
    n_classes = int(target.max()) + 1
    table = np.zeros((n_groups, n_classes))
    np.add.at(table, (codes[tr], target[tr]), 1.0)
    prior = np.bincount(target[tr], minlength=n_classes) / max(1, tr.sum())
    share = np.where(count[:, None] > 0, table / np.maximum(count, 1)[:, None], prior[None, :])
    y_te = target[te]
    if task == TaskType.BINARY:
        if len(np.unique(y_te)) < 2:
            return "roc_auc", None
        return "roc_auc", float(roc_auc_score(y_te == 1, share[codes[te], 1]))
    accuracy = float((share[codes[te]].argmax(axis=1) == y_te).mean())
    majority_error = float((y_te != prior.argmax()).mean())
    if majority_error == 0 or (1 - accuracy) > MULTICLASS_ERROR_SHARE * majority_error:
        return "accuracy", None  # the majority guess is (nearly) as good: no leak by itself
    return "accuracy", accuracy
