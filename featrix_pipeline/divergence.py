"""Binning and divergences of one column between training and current rows (PSI, KL, before/after
summaries, the most shifted bin): the bins always come from the training rows. ``drift`` measures a
table with them, ``windows`` the training rows' own movement."""

from __future__ import annotations

import numpy as np
import pandas as pd

from featrix_model.codecs.timestamp import parse_timestamps

N_QUANTILE_BINS = 10
TOP_VALUES = 20
SMOOTHING = 0.5
TEXT_COVERAGE = 0.5  # top-20 training values covering less than this share of a text column: bin by length
TEXT_TYPES = ("string", "email", "domain", "url")
SKIPPED_TYPES = {t: f"{t} values have no single distribution to bin" for t in ("json", "vector")}


def _divergence(p_counts: np.ndarray, q_counts: np.ndarray) -> tuple[float, float]:
    """(PSI, KL(q ‖ p) in bits) of training counts ``p`` and current counts ``q``, smoothed."""
    b = len(p_counts)
    p = (p_counts + SMOOTHING) / (p_counts.sum() + SMOOTHING * b)
    q = (q_counts + SMOOTHING) / (q_counts.sum() + SMOOTHING * b)
    return float(np.sum((q - p) * np.log(q / p))), float(np.sum(q * np.log2(q / p)))


def _numbers(s: pd.Series, timestamp: bool) -> np.ndarray:
    """float64 values (epoch seconds for timestamps); missing and non-finite as NaN."""
    if timestamp:
        utc, _, _ = parse_timestamps(s)
        x = (utc - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan)
    else:
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isfinite(x), x, np.nan)


def _number_bins(train: np.ndarray, cur: np.ndarray, timestamp: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Counts per bin (training, current) and the bins' labels: below the training minimum, the
    training deciles up to the maximum, above the maximum, NULL. The outer two are empty in training,
    so values past its range always show (on a column with few distinct values, such as a text's
    length, every decile can be the same value)."""
    ok = train[~np.isnan(train)]
    if not len(ok):  # no training values (a column kept although empty): one bin of values, one of NULL
        return (np.array([0, len(train)]), np.array([int((~np.isnan(cur)).sum()), int(np.isnan(cur).sum())]),
                ["values (none in training)", "NULL"])
    lo, hi, inner = _edges(ok)

    def counts(x):
        return np.bincount(_codes(x, lo, hi, inner), minlength=len(inner) + 4)

    f = _fmt_time if timestamp else fmt_value
    bounds = [lo, *inner, hi]
    labels = [f"[{f(a)}, {f(b)}{']' if i == len(bounds) - 2 else ')'}" for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    return (counts(train), counts(cur),
            [f"below the training minimum {f(lo)}", *labels, f"above the training maximum {f(hi)}", "NULL"])


def _fmt_time(v) -> str:
    return pd.Timestamp(float(v), unit="s").isoformat(sep=" ", timespec="minutes")


def _number_summary(x: np.ndarray, timestamp: bool) -> dict:
    ok = x[~np.isnan(x)]
    out = {"null_share": float(np.isnan(x).mean()) if len(x) else 0.0}
    if len(ok):
        p5, med, p95 = np.quantile(ok, [0.05, 0.5, 0.95])
        out.update(mean=float(ok.mean()), median=float(med), p5=float(p5), p95=float(p95))
        if timestamp:
            out.update({k: _fmt_time(out[k]) for k in ("mean", "median", "p5", "p95")})
    return out


def _categories(train: pd.Series, cur: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Both columns as comparable values: floats when both are numbers, else text (NULLs kept)."""
    def numeric(s):
        return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)

    if numeric(train) and numeric(cur):
        return tuple(pd.to_numeric(s).astype("float64").reset_index(drop=True) for s in (train, cur))  # type: ignore
    return tuple(s.astype(str).where(s.notna()).reset_index(drop=True) for s in (train, cur))  # type: ignore


def _category_counts(train: pd.Series, cur: pd.Series, top: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Counts of the ``top`` values, then "(other)", then NULL."""
    def counts(s):
        codes = top.get_indexer(s)
        codes[codes < 0] = len(top)
        codes[s.isna().to_numpy()] = len(top) + 1
        return np.bincount(codes, minlength=len(top) + 2)

    return counts(train), counts(cur)


def _shares(s: pd.Series) -> pd.Series:
    return s.fillna("NULL").value_counts(normalize=True) if len(s) else pd.Series(dtype=float)


def _category_summaries(train: pd.Series, cur: pd.Series) -> tuple[dict, dict, dict]:
    """Top values with shares before and after, and the value whose share moved most (over the
    training's and the current rows' top values, NULL included)."""
    before, after = _shares(train), _shares(cur)
    values = before.index[:TOP_VALUES].union(after.index[:TOP_VALUES], sort=False)
    b, a = before.reindex(values, fill_value=0.0), after.reindex(values, fill_value=0.0)
    i = int(np.argmax(np.abs(a.to_numpy() - b.to_numpy())))
    top = [{"top": {fmt_value(v): float(x) for v, x in sh.iloc[:5].items()}, "null_share": float(sh.get("NULL", 0.0))}
           for sh in (before, after)]
    return (*top,
            {"value": fmt_value(values[i]), "before": float(b.iloc[i]), "after": float(a.iloc[i])})


def fmt_value(v) -> str:
    """A number as a person reads it (1,040 / 6.66 / -3); anything else as its text."""
    if not isinstance(v, (int, float, np.number)) or isinstance(v, (bool, np.bool_)) or not np.isfinite(v):
        return str(v)
    v = float(v)
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _bin_shift(b: np.ndarray, a: np.ndarray, labels: list[str]) -> dict:
    sb, sa = b / max(b.sum(), 1), a / max(a.sum(), 1)
    i = int(np.argmax(np.abs(sa - sb)))
    return {"value": labels[i], "before": float(sb[i]), "after": float(sa[i])}


def measure_column(train: pd.Series, cur: pd.Series, semantic_type: str) -> dict:
    """PSI, KL and before/after summaries of one column; ``{"skipped": reason}`` when not measured."""
    if semantic_type in SKIPPED_TYPES:
        return {"skipped": SKIPPED_TYPES[semantic_type]}
    out: dict = {"semantic_type": semantic_type}
    if semantic_type in ("scalar", "timestamp"):
        ts = semantic_type == "timestamp"
        x, y = _numbers(train, ts), _numbers(cur, ts)
        b, a, labels = _number_bins(x, y, ts)
        out.update(kind="timestamp" if ts else "number", before=_number_summary(x, ts), after=_number_summary(y, ts))
        out["most_shifted"] = _bin_shift(b, a, labels)
    else:
        tv, cv = _categories(train, cur)
        counts = tv.value_counts()
        top = counts.index[:TOP_VALUES]
        text = semantic_type in TEXT_TYPES and counts.iloc[:TOP_VALUES].sum() < TEXT_COVERAGE * max(counts.sum(), 1)
        if text:
            x = tv.str.len().to_numpy(dtype="float64", na_value=np.nan)
            y = cv.str.len().to_numpy(dtype="float64", na_value=np.nan)
            b, a, labels = _number_bins(x, y)
            seen = cv.notna() & cv.isin(counts.index)
            out.update(kind="text length", before=_number_summary(x, False), after=_number_summary(y, False),
                       most_shifted=_bin_shift(b, a, labels))
            out["after"]["unseen_share"] = float(1 - seen.sum() / max(cv.notna().sum(), 1))
        else:
            b, a = _category_counts(tv, cv, top)
            before, after, shifted = _category_summaries(tv, cv)
            out.update(kind="category", before=before, after=after, most_shifted=shifted)
    out["psi"], out["kl_bits"] = _divergence(b, a)
    out["bins"] = int(len(b))
    return out


def target_shift(train: pd.Series, cur: pd.Series) -> dict:
    """A target's prior shift: PSI of its classes (or, for a number with more than 20 values, its
    training-quantile bins) between the labelled training and current rows; unlabelled rows left out."""
    train, cur = train.dropna().reset_index(drop=True), cur.dropna().reset_index(drop=True)
    out: dict = {"n_training": int(len(train)), "n_current": int(len(cur))}
    if not len(cur) or not len(train):
        return {**out, "skipped": f"no labelled {'current' if not len(cur) else 'training'} rows"}
    numeric = pd.api.types.is_numeric_dtype(train.dtype) and not pd.api.types.is_bool_dtype(train.dtype)
    kind = "scalar" if numeric and train.nunique() > TOP_VALUES else "set"
    m = measure_column(train, cur, kind)
    return {**out, **{k: m[k] for k in ("kind", "psi", "kl_bits", "before", "after", "most_shifted")}}


def time_order(s: pd.Series) -> np.ndarray | None:
    """Row positions in time order (missing times last); None when no value is a time."""
    x = _numbers(s, timestamp=True)
    if np.isnan(x).all():
        return None
    return np.argsort(np.where(np.isnan(x), np.inf, x), kind="stable")


def training_codes(train: pd.Series, semantic_type: str) -> tuple[np.ndarray, int] | None:
    """Each training row's bin under the binning ``measure_column`` uses for the column, and the number
    of bins (None when the column is not binned), so many stretches of the training rows can be
    counted at once."""
    if semantic_type in SKIPPED_TYPES:
        return None
    if semantic_type in ("scalar", "timestamp"):
        return _number_codes(_numbers(train, semantic_type == "timestamp"))
    tv = _categories(train, train)[0]
    counts = tv.value_counts()
    top = counts.index[:TOP_VALUES]
    if semantic_type in TEXT_TYPES and counts.iloc[:TOP_VALUES].sum() < TEXT_COVERAGE * max(counts.sum(), 1):
        return _number_codes(tv.str.len().to_numpy(dtype="float64", na_value=np.nan))
    codes = top.get_indexer(tv)
    codes[codes < 0] = len(top)
    codes[tv.isna().to_numpy()] = len(top) + 1
    return codes, len(top) + 2


def _number_codes(x: np.ndarray) -> tuple[np.ndarray, int]:
    """``_number_bins``' bins of the training values themselves."""
    ok = x[~np.isnan(x)]
    if not len(ok):
        return np.where(np.isnan(x), 1, 0), 2
    lo, hi, inner = _edges(ok)
    return _codes(x, lo, hi, inner), len(inner) + 4


def _edges(ok: np.ndarray) -> tuple[float, float, np.ndarray]:
    """The training minimum, maximum and inner decile edges (tied quantiles merged)."""
    lo, hi = ok.min(), ok.max()
    inner = np.unique(np.quantile(ok, np.linspace(0, 1, N_QUANTILE_BINS + 1)[1:-1]))
    return lo, hi, inner[inner > lo]


def _codes(x: np.ndarray, lo: float, hi: float, inner: np.ndarray) -> np.ndarray:
    """Bin of each value: below the minimum, [lo, e1), ..., [ek, hi], above the maximum, NULL."""
    k = len(inner) + 2
    codes = np.where(x < lo, 0, np.where(x > hi, k, np.searchsorted(inner, x, side="right") + 1))
    return np.where(np.isnan(x), k + 1, codes)


def stretch_psis(codes: np.ndarray, n_bins: int, n: int) -> np.ndarray:
    """PSI of every run of ``n`` consecutive rows of ``codes`` (back to back) against all of them."""
    k = len(codes) // n
    total = np.bincount(codes, minlength=n_bins)
    counts = np.zeros((k, n_bins))
    np.add.at(counts, (np.repeat(np.arange(k), n), codes[: k * n]), 1)
    return np.array([_divergence(total, c)[0] for c in counts])
