"""Timestamp codec: datetimes → the 12 cyclical / linear features of spec §5.4.

Spec §5.4 "Timestamp Encoding (TimestampCodec)": "Temporal data decomposes into 12 interpretable
cyclical and linear features. Cyclical encoding matters because December 31 and January 1 should
be close in embedding space—linear encoding makes them maximally far apart."

======================  ============  =========  ================================================
feature (§5.4)          range         encoding   columns of ``features`` (float32, n × 20)
======================  ============  =========  ================================================
seconds                 0-59          sin/cos    0, 1   angle 2π·(second + µs/1e6)/60
minutes                 0-59          sin/cos    2, 3   angle 2π·minute/60
hours                   0-23          sin/cos    4, 5   angle 2π·hour/24
day_of_month            1-31          sin/cos    6, 7   angle 2π·(day-1)/days_in_month (the last
                                                        day of every month sits next to the 1st)
day_of_week             0-6 (Mon=0)   sin/cos    8, 9   angle 2π·day_of_week/7
month                   1-12          sin/cos    10, 11 angle 2π·(month-1)/12
day_of_year             1-366         sin/cos    12, 13 angle 2π·(day_of_year-1)/(365 or 366)
week_of_year            1-53          sin/cos    14, 15 angle 2π·(ISO week-1)/53
year                    absolute      linear     16     (year - fitted mean) / fitted std
timezone_offset         hours         linear     17     UTC offset hours / 12
year_since_2000         years         linear     18     fractional years since 2000-01-01 / 10
year_since_2020         years         linear     19     fractional years since 2020-01-01 / 10
======================  ============  =========  ================================================

The calendar features are taken on the UTC instant: a tz-aware value (datetime64 with a zone, or a
string with ``Z`` / ``±HH:MM``) keeps its offset as ``timezone_offset`` and is then converted to
UTC-naive; tz-naive values are treated as UTC with offset 0. Strings parse with
``pd.to_datetime(format="ISO8601")`` first, then (for what is left) one format inferred from the
first leftover string, then ``format="mixed"``; each distinct string is parsed once. Numeric columns are read as Unix epoch seconds. The linear
features are clipped to ±10. ``recon_target`` is the standardised epoch seconds clipped to ±10.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch

from featrix_model.codecs.base import Codec, as_text

FEATURE_NAMES = ["second_sin", "second_cos", "minute_sin", "minute_cos", "hour_sin", "hour_cos",
                 "day_of_month_sin", "day_of_month_cos", "day_of_week_sin", "day_of_week_cos",
                 "month_sin", "month_cos", "day_of_year_sin", "day_of_year_cos", "week_of_year_sin",
                 "week_of_year_cos", "year", "timezone_offset", "year_since_2000", "year_since_2020"]
N_FEATURES = len(FEATURE_NAMES)
CLIP = 10.0
_YEAR_S = 365.2425 * 86400.0
_EPOCH_2000 = 946684800.0  # 2000-01-01T00:00:00Z
_EPOCH_2020 = 1577836800.0  # 2020-01-01T00:00:00Z
_TZ_RE = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"


def _offset_hours(strings: pd.Series) -> np.ndarray:
    """UTC offset (hours) written after the time part of each string; 0 when none (vectorised)."""
    tz = strings.str.extract(_TZ_RE, flags=2)["tz"].fillna("Z").str.upper()  # flags=2: IGNORECASE
    body = tz.str.replace(":", "", regex=False)
    numeric = body.str.match(r"^[+-]\d")
    hh = pd.to_numeric(body.str.slice(1, 3), errors="coerce").fillna(0.0)
    mm = pd.to_numeric(body.str.slice(3, 5).replace("", "0"), errors="coerce").fillna(0.0)
    sign = np.where(body.str.startswith("-"), -1.0, 1.0)
    return np.where(numeric.to_numpy(), sign * (hh.to_numpy() + mm.to_numpy() / 60.0), 0.0)


def parse_timestamps(values: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """(UTC-naive datetime Series, UTC offset hours, unparseable mask) aligned with ``values``.

    Each distinct value is parsed once (``pd.factorize``) and the results are gathered back, so a
    100K-row column with repeated values costs one parse per distinct value.
    """
    n = len(values)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        s = values.reset_index(drop=True)
        if getattr(s.dt, "tz", None) is not None:
            utc = s.dt.tz_convert("UTC").dt.tz_localize(None)
            offset = ((s.dt.tz_localize(None) - utc).dt.total_seconds() / 3600.0).to_numpy(dtype="float64",
                                                                                          na_value=0.0)
            return utc, offset, np.zeros(n, dtype=bool)
        return s, np.zeros(n), np.zeros(n, dtype=bool)
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        secs = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        out_of_range = np.isfinite(secs) & (np.abs(secs) >= 9e9)  # beyond ~year 2255: not epoch seconds
        secs = np.where(out_of_range | ~np.isfinite(secs), np.nan, secs)
        utc = pd.Series(pd.to_datetime(secs, unit="s", errors="coerce"))
        return utc, np.zeros(n), out_of_range
    s = values.reset_index(drop=True)
    try:
        codes, uniq = pd.factorize(s, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists, dicts) are no timestamps: unparseable
        s = s.map(lambda v: v if _hashable(v) else repr(v))
        codes, uniq = pd.factorize(s, use_na_sentinel=True)
    try:
        texts = np.asarray(uniq, dtype=object).astype(str)
    except UnicodeDecodeError:  # bytes that are not text: read as their b'..' form (unparseable)
        texts = [str(u) for u in uniq]
    strs = pd.Series(texts, dtype=object).str.strip()
    parsed = pd.to_datetime(strs, format="ISO8601", errors="coerce", utc=True)
    for fmt in (None, "mixed"):  # None: one format inferred from the first leftover (fast), then per-value
        left = parsed.isna() & strs.ne("")
        if not left.any():
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed[left] = pd.to_datetime(strs[left], format=fmt, errors="coerce", utc=True)
        except (ValueError, TypeError, OverflowError):
            pass
    utc_u = parsed.dt.tz_localize(None)
    off_u = np.where(parsed.notna().to_numpy(), _offset_hours(strs), 0.0)
    bad_u = (parsed.isna() & strs.ne("")).to_numpy()
    valid = codes >= 0
    take = np.where(valid, codes, 0)
    if len(uniq) == 0:
        return pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]"), np.zeros(n), np.zeros(n, dtype=bool)
    utc = utc_u.iloc[take].reset_index(drop=True).where(pd.Series(valid))
    return utc, np.where(valid, off_u[take], 0.0), np.where(valid, bad_u[take], False)


def _hashable(v) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _epoch_seconds(utc: pd.Series) -> np.ndarray:
    return (utc - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan)


def calendar(values: np.ndarray) -> dict[str, np.ndarray]:
    """Calendar fields of datetime64 ``values`` (any unit; computed in microseconds, so years 1 to
    9999 fit) in plain numpy (float64, NaN where NaT): what
    pandas' ``.dt`` accessors give — second, microsecond, minute, hour, day, month, year,
    days_in_month, day_of_week (Monday 0), day_of_year, days_in_year, ISO week — plus ``epoch_s``
    and ``missing``. One row costs microseconds instead of the accessors' milliseconds each."""
    values = np.asarray(values).astype("datetime64[us]")  # ns would overflow outside 1678–2262 (9999-12-31)
    missing = np.isnat(values)
    us = np.where(missing, 0, values.astype("int64"))
    day_us = 86_400 * 10**6
    days = us // day_us
    rem = us - days * day_us
    d = days.astype("datetime64[D]")
    month0, year0 = d.astype("datetime64[M]"), d.astype("datetime64[Y]")
    year = year0.astype("int64") + 1970
    doy = (d - year0.astype("datetime64[D]")).astype("int64") + 1
    dow = (days + 3) % 7  # 1970-01-01 was a Thursday (3 with Monday 0)
    week = (doy - (dow + 1) + 10) // 7  # ISO 8601: the week holding the year's first Thursday is week 1
    week = np.where(week < 1, _iso_weeks(year - 1), np.where(week > _iso_weeks(year), 1, week))
    out = {"second": rem // 10**6 % 60, "microsecond": rem % 10**6, "minute": rem // (60 * 10**6) % 60,
           "hour": rem // (3600 * 10**6), "day": (d - month0.astype("datetime64[D]")).astype("int64") + 1,
           "month": month0.astype("int64") % 12 + 1, "year": year,
           "days_in_month": ((month0 + 1).astype("datetime64[D]") - month0.astype("datetime64[D]")).astype("int64"),
           "day_of_week": dow, "day_of_year": doy, "iso_week": week,
           "days_in_year": ((year0 + 1).astype("datetime64[D]") - year0.astype("datetime64[D]")).astype("int64"),
           "epoch_s": us / 1e6}
    out = {k: np.where(missing, np.nan, v.astype("float64")) for k, v in out.items()}
    out["missing"] = missing
    return out


def _iso_weeks(year: np.ndarray) -> np.ndarray:
    """ISO weeks in ``year``: 53 when the year starts on a Thursday, or on a Wednesday in a leap year."""
    def p(y):
        return (y + y // 4 - y // 100 + y // 400) % 7
    return np.where((p(year) == 4) | (p(year - 1) == 3), 53, 52)


class TimestampCodec(Codec):
    """Fitted year / epoch statistics → ``features`` (n, 20), ``missing`` (n,), ``recon_target`` (n,)."""

    semantic_type = "timestamp"

    def fit(self, values: pd.Series) -> "TimestampCodec":
        utc, offset, bad = parse_timestamps(values)
        ok = utc.notna().to_numpy()
        year = utc.dt.year.to_numpy(dtype="float64", na_value=np.nan)[ok]
        secs = _epoch_seconds(utc)[ok]
        st: dict[str, Any] = {"n_rows": int(len(values)), "n_present": int(ok.sum()), "n_unparseable": int(bad.sum()),
                              "unparseable_examples": [str(v) for v in pd.unique(as_text(values[bad]))[:5]]
                              if bad.any() else []}
        st["year_mean"] = float(year.mean()) if len(year) else 2000.0
        st["year_std"] = float(year.std()) if len(year) > 1 and year.std() > 0 else 1.0
        st["epoch_mean"] = float(secs.mean()) if len(secs) else 0.0
        st["epoch_std"] = float(secs.std()) if len(secs) > 1 and secs.std() > 0 else 86400.0
        st["min"] = utc[ok].min().isoformat() if ok.any() else None
        st["max"] = utc[ok].max().isoformat() if ok.any() else None
        st["tz_aware_ratio"] = float(np.mean(offset[ok] != 0)) if ok.any() else 0.0
        self.state_ = st
        return self

    def transform(self, values: pd.Series) -> dict[str, torch.Tensor]:
        st = self.state_
        utc, offset, _ = parse_timestamps(values)
        cal = calendar(utc.to_numpy())
        missing, secs = cal["missing"], cal["epoch_s"]
        cyclic = [(cal["second"] + cal["microsecond"] / 1e6) / 60.0, cal["minute"] / 60.0, cal["hour"] / 24.0,
                  (cal["day"] - 1) / cal["days_in_month"], cal["day_of_week"] / 7.0, (cal["month"] - 1) / 12.0,
                  (cal["day_of_year"] - 1) / cal["days_in_year"], (cal["iso_week"] - 1) / 53.0]
        cols = []
        for frac in cyclic:
            cols += [np.sin(2 * np.pi * frac), np.cos(2 * np.pi * frac)]
        cols += [(cal["year"] - st["year_mean"]) / st["year_std"], offset / 12.0,
                 (secs - _EPOCH_2000) / _YEAR_S / 10.0, (secs - _EPOCH_2020) / _YEAR_S / 10.0]
        feats = np.clip(np.nan_to_num(np.stack(cols, axis=1), nan=0.0), -CLIP, CLIP)
        feats[missing] = 0.0
        recon = np.clip(np.nan_to_num((secs - st["epoch_mean"]) / st["epoch_std"], nan=0.0), -CLIP, CLIP)
        return {"features": torch.from_numpy(feats.astype(np.float32)),
                "missing": torch.from_numpy(missing.copy()),
                "recon_target": torch.from_numpy(np.where(missing, 0.0, recon).astype(np.float32))}

    def get_state(self) -> dict:
        return dict(self.state_)

    def set_state(self, state: dict) -> "TimestampCodec":
        self.state_ = dict(state)
        return self

    def encoder_kwargs(self) -> dict:
        return {"n_features": N_FEATURES}

    def report(self) -> dict:
        st = self.state_
        out = {k: st[k] for k in ("n_rows", "n_present", "n_unparseable", "unparseable_examples", "min", "max",
                                  "tz_aware_ratio")}
        out["features"] = "12 features: 8 cyclical sin/cos pairs + year, timezone offset, years since 2000/2020"
        return out
