"""Scalar codec: one numeric column → the 17 continuous + 5 binned features of spec §5.1.

Spec §5.1 "Scalar Encoding (AdaptiveScalarEncoder)": "Numeric values are deceptively difficult to
encode. Linear normalization fails for heavy-tailed distributions, multi-modal data, and columns
with outliers. Featrix uses a 20-strategy adaptive ensemble that learns which transformations
work best for each column." This codec computes every strategy's input once, vectorised; the
encoder (:mod:`featrix_model.encoders.scalar`) learns the strategy weights.

``transform`` returns

* ``"continuous"`` float32 (n, 17), columns in :data:`CONTINUOUS_FEATURES` order — "12 transforms:
  linear, log, robust, rank, zscore, minmax, quantile, yeojohnson, winsor, sigmoid, inverse,
  clipped_log • 2 periodic (sin, cos) • 2 polynomial (x², √x) • 1 frequency". Every feature is
  finite and clipped to ±10 (unseen / huge values included); missing rows are 0.
* ``"binned"`` int64 (n, 5), columns in :data:`BINNED_FEATURES` order — "bucket (quantile bin),
  is_positive, is_negative, is_outlier, target_bin". Row 19 of the table is "Target-Guided
  Binning: Quantile bins / Supervised signal"; self-supervised training has no target, so
  ``target_bin`` is a second, coarser quantile binning (``n_coarse_bins``, default 4) that captures
  the broad level of the value next to the fine 16-bin ``bucket``.
* ``"missing"`` bool (n,) — null, blank, unparseable (e.g. ``'thirty'``) or non-finite (±inf).
* ``"recon_target"`` float32 (n,) — the z-scored value clipped to ±10 (0 where missing).

Strategy rules (§5.1 table) as implemented, x the parsed value:
linear / zscore ``(x - mean) / std`` (the table gives both the same formula; they stay separate
strategies with their own learned weight); log ``log(x + offset + ε)`` with ``offset = max(0,
-min)`` so non-positive columns stay defined, then standardised; robust ``(x - median) / IQR``;
rank = the step-wise empirical CDF on 101 quantile knots (mid-rank for ties), in [0, 1]; quantile =
the piecewise-linear (continuous) CDF through the same knots, "Uniform distribution" in [0, 1];
minmax ``(x - min) / (max - min)``; yeojohnson = the Yeo-Johnson power transform of ``x / std``
with λ fitted by ``scipy.stats.yeojohnson_normmax`` on a 5,000-point quantile sample, then
standardised; winsor = x clipped to the 1st/99th percentiles, standardised; sigmoid ``σ(z)``;
inverse ``1 / (1 + |x| / s)`` (1/x regularised so it is finite at 0; s = median |x|); clipped_log
``log(1 + clip(x - min, 0, p99 - min) / IQR)`` standardised; periodic ``sin/cos(2π (x - min) /
range)``; polynomial ``z²`` and ``sign(z)·√|z|``; frequency = share of training rows holding that
exact value for "categorical-like integers" (values seen ≥ max(2, 0.5% of rows), top 64), else 0.
Binned: bucket = 16 quantile bins (duplicate edges dropped); is_positive ``x > 0``; is_negative
``x < 0``; is_outlier ``|x - μ| > 2σ``; target_bin = 4 quantile bins.

Initial strategy bias (§5.1): "Strategy weights start biased based on column statistics: high
skewness favors Log and Yeo-Johnson; high outlier ratio favors Robust and Rank; bounded ranges
favor Min-Max; many zeros favor Bucket and Is-Positive." See :meth:`ScalarCodec._strategy_bias`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats as sps

from featrix_model.codecs.base import Codec, as_text

#: The 20 strategies of the §5.1 table, in table order (index = strategy id used by the encoder).
STRATEGIES = ["linear", "log", "robust", "rank", "periodic", "bucket", "is_positive", "is_negative",
              "is_outlier", "zscore", "minmax", "quantile", "yeojohnson", "winsor", "sigmoid",
              "inverse", "polynomial", "frequency", "target_bin", "clipped_log"]
STRATEGY_LABELS = ["Linear", "Log", "Robust", "Rank", "Periodic", "Bucket", "Is-Positive", "Is-Negative",
                   "Is-Outlier", "Z-Score", "Min-Max", "Quantile", "Yeo-Johnson", "Winsorization",
                   "Sigmoid", "Inverse", "Polynomial", "Frequency", "Target-Guided Binning", "Clipped Log"]
CONTINUOUS_FEATURES = ["linear", "log", "robust", "rank", "zscore", "minmax", "quantile", "yeojohnson",
                       "winsor", "sigmoid", "inverse", "clipped_log", "periodic_sin", "periodic_cos",
                       "poly_square", "poly_sqrt", "frequency"]
BINNED_FEATURES = ["bucket", "is_positive", "is_negative", "is_outlier", "target_bin"]
#: feature → strategy id (periodic and polynomial each feed two features).
_FEATURE_TO_STRATEGY = {"periodic_sin": "periodic", "periodic_cos": "periodic", "poly_square": "polynomial",
                        "poly_sqrt": "polynomial"}
CONTINUOUS_STRATEGY = [STRATEGIES.index(_FEATURE_TO_STRATEGY.get(f, f)) for f in CONTINUOUS_FEATURES]
BINNED_STRATEGY = [STRATEGIES.index(f) for f in BINNED_FEATURES]
CLIP = 10.0


def _finite(v: float, default: float) -> float:
    return float(v) if v is not None and math.isfinite(v) else float(default)


def _scale(*candidates: float) -> float:
    """First candidate that is a usable (finite, > 0) scale; 1.0 otherwise."""
    for c in candidates:
        if c is not None and math.isfinite(c) and c > 1e-12:
            return float(c)
    return 1.0


def parse_numeric(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float64 values with NaN for missing, unparseable mask, non-finite mask) — vectorised.

    Spec §1.4 "Mixed Data Types in Columns": "A column labeled 'age' contains 25, 'thirty', NULL,
    999 ... Featrix detects the majority type (scalar), parses what it can, and flags outliers".
    Blank strings are missing, not unparseable; ±inf is treated as missing (counted separately).
    """
    s = values
    if pd.api.types.is_timedelta64_dtype(s.dtype):
        s = s.dt.total_seconds()
    elif isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        x = s.to_numpy(dtype="float64", na_value=np.nan)
        bad = np.zeros(len(x), dtype=bool)
    else:
        num = pd.to_numeric(s, errors="coerce")
        x = num.to_numpy(dtype="float64", na_value=np.nan)
        present = s.notna().to_numpy().copy()
        if present.any():
            blank = as_text(s).str.strip().eq("").to_numpy()
            present &= ~blank
        bad = present & np.isnan(x)
    nonfinite = np.isinf(x)
    x = np.where(nonfinite, np.nan, x)
    return x, bad, nonfinite


class ScalarCodec(Codec):
    """Fitted statistics → 17 continuous features, 5 bin indices, missing mask, recon target.

    Params: ``n_bins`` (16, bucket), ``n_coarse_bins`` (4, target_bin), ``n_quantiles`` (101
    rank/quantile knots), ``freq_top`` (64 frequency-table values), ``yj_sample`` (5,000 points).
    """

    semantic_type = "scalar"

    def __init__(self, name: str = "", n_bins: int = 16, n_coarse_bins: int = 4, n_quantiles: int = 101,
                 freq_top: int = 64, yj_sample: int = 5000, **params: Any):
        super().__init__(name, n_bins=n_bins, n_coarse_bins=n_coarse_bins, n_quantiles=n_quantiles,
                         freq_top=freq_top, yj_sample=yj_sample, **params)

    # ------------------------------------------------------------------ fit

    def fit(self, values: pd.Series) -> "ScalarCodec":
        with np.errstate(all="ignore"):  # extreme training values (±1e308) fall back to safe scales
            return self._fit(values)

    def _fit(self, values: pd.Series) -> "ScalarCodec":
        p = self.params
        x_all, bad, nonfinite = parse_numeric(values)
        x = np.sort(x_all[~np.isnan(x_all)])
        n = len(x)
        st: dict[str, Any] = {"n_rows": int(len(x_all)), "n_present": int(n), "n_unparseable": int(bad.sum()),
                              "n_nonfinite": int(nonfinite.sum())}
        st["unparseable_examples"] = [str(v) for v in pd.unique(as_text(values[bad]))[:5]] if bad.any() else []
        if n == 0:
            x = np.zeros(1)
        mean, std = float(np.mean(x)), float(np.std(x))
        q = np.quantile(x, [0.01, 0.25, 0.5, 0.75, 0.99])
        st.update(min=float(x[0]), max=float(x[-1]), mean=_finite(mean, q[2]), median=float(q[2]),
                  p01=float(q[0]), p99=float(q[4]), q1=float(q[1]), q3=float(q[3]))
        st["iqr"] = _scale(float(q[3] - q[1]), std, float(x[-1] - x[0]))
        st["std"] = _scale(std, st["iqr"])
        st["range"] = _scale(float(x[-1] - x[0]))
        big = float(np.finfo(np.float64).max)  # mean ± 2σ overflows near ±1e308: the state stays finite JSON
        st["outlier_lo"], st["outlier_hi"] = (float(np.clip(st["mean"] + k * st["std"], -big, big)) for k in (-2, 2))
        st["knots"] = np.quantile(x, np.linspace(0, 1, p["n_quantiles"])).tolist()
        st["bucket_edges"] = np.unique(np.quantile(x, np.linspace(0, 1, p["n_bins"] + 1)[1:-1])).tolist()
        st["coarse_edges"] = np.unique(np.quantile(x, np.linspace(0, 1, p["n_coarse_bins"] + 1)[1:-1])).tolist()
        # log: shift non-positive columns, ε relative to the typical magnitude
        st["log_offset"] = max(0.0, -st["min"])
        base = x + st["log_offset"]
        pos = base[base > 0]
        st["log_eps"] = _scale(1e-3 * float(np.median(pos)) if len(pos) else None)
        st["inv_scale"] = _scale(float(np.median(np.abs(x))), st["iqr"])
        # Yeo-Johnson λ on a deterministic quantile sample of x / std (no RNG)
        sample = x[np.linspace(0, n - 1, min(n, p["yj_sample"])).astype(int)] if n else x
        st["yj_lambda"] = self._yj_lambda(sample / st["std"])
        # frequency table for categorical-like integers
        vals, counts = np.unique(x, return_counts=True) if n else (np.zeros(0), np.zeros(0, dtype=int))
        keep = counts >= max(2, 0.005 * n)
        order = np.argsort(-counts[keep], kind="stable")[: p["freq_top"]]
        fv, fc = vals[keep][order], counts[keep][order]
        srt = np.argsort(fv)
        st["freq_values"], st["freq_shares"] = fv[srt].tolist(), (fc[srt] / max(n, 1)).tolist()
        self.state_ = st
        # standardisation of the unbounded transforms, fitted on the training values
        raw = self._raw(x, st)
        st["feat_mean"] = {k: _finite(float(np.mean(raw[k])), 0.0) for k in _STANDARDISED}
        st["feat_std"] = {k: _scale(float(np.std(raw[k]))) for k in _STANDARDISED}
        skew = float(np.mean(((x - mean) / std) ** 3)) if n > 2 and std > 1e-12 * max(1.0, abs(mean)) else 0.0
        st["skewness"] = _finite(skew, 0.0)
        iqr = q[3] - q[1]
        st["outlier_ratio"] = float(np.mean((x < q[1] - 1.5 * iqr) | (x > q[3] + 1.5 * iqr))) if iqr > 0 else 0.0
        st["zero_ratio"] = float(np.mean(x == 0)) if n else 0.0
        st["range_over_std"] = _finite((st["max"] - st["min"]) / st["std"], 0.0) if n else 0.0
        st["bounded"] = bool(n > 1 and st["max"] > st["min"] and
                             (st["range_over_std"] <= 4.0 or (st["min"] >= 0 and st["max"] <= 1)))
        return self

    @staticmethod
    def _yj_lambda(sample: np.ndarray) -> float:
        if len(sample) < 3 or np.ptp(sample) == 0:
            return 1.0
        try:
            with np.errstate(all="ignore"):
                lam = float(sps.yeojohnson_normmax(np.clip(sample, -1e6, 1e6)))
        except (ValueError, FloatingPointError, RuntimeError, OverflowError):
            return 1.0
        return float(np.clip(lam, -3.0, 3.0)) if math.isfinite(lam) else 1.0

    # ------------------------------------------------------------------ transform

    @staticmethod
    def _raw(x: np.ndarray, st: dict) -> dict[str, np.ndarray]:
        """Un-standardised transforms needing a fitted mean/std (float64, may be large)."""
        with np.errstate(all="ignore"):
            log = np.log(np.maximum(x + st["log_offset"], 0.0) + st["log_eps"])
            u = np.clip(x / st["std"], -1e6, 1e6)
            lam = st["yj_lambda"]
            pos = u >= 0
            up, un = np.where(pos, u, 0.0), np.where(pos, 0.0, u)
            yj_p = np.log1p(up) if abs(lam) < 1e-6 else (np.power(up + 1, lam) - 1) / lam
            yj_n = -np.log1p(-un) if abs(lam - 2) < 1e-6 else -(np.power(1 - un, 2 - lam) - 1) / (2 - lam)
            yj = np.where(pos, yj_p, yj_n)
            win = np.clip(x, st["p01"], st["p99"])
            clog = np.log1p(np.clip(x - st["min"], 0.0, st["p99"] - st["min"]) / st["iqr"])
        return {"log": log, "yeojohnson": yj, "winsor": win, "clipped_log": clog}

    def _arrays(self) -> dict[str, np.ndarray]:
        """The fitted state's arrays, converted once per state (a single row paid the conversions
        and the knots' ``np.unique`` on every call)."""
        st = self.state_
        cached = self.__dict__.get("_arrays_cache")
        if cached is not None and cached[0] is st:
            return cached[1]
        knots = np.asarray(st["knots"])
        ukn, inv = np.unique(knots, return_inverse=True)  # tied knots → their mean level (mid-rank)
        ulev = np.bincount(inv, np.linspace(0, 1, len(knots))) / np.bincount(inv)
        arrays = {"knots": knots, "ukn": ukn, "ulev": ulev, "fv": np.asarray(st["freq_values"], dtype="float64"),
                  "fshares": np.asarray(st["freq_shares"]), "bucket_edges": np.asarray(st["bucket_edges"]),
                  "coarse_edges": np.asarray(st["coarse_edges"])}
        self.__dict__["_arrays_cache"] = (st, arrays)
        return arrays

    def transform(self, values: pd.Series) -> dict[str, torch.Tensor]:
        """Vectorised numpy (searchsorted / interp), no per-row Python; see the module docstring."""
        st = self.state_
        x, _, _ = parse_numeric(values)
        missing = np.isnan(x)
        x = np.where(missing, st["median"], x)
        raw = self._raw(x, st)
        a = self._arrays()
        knots, ukn, ulev, fv = a["knots"], a["ukn"], a["ulev"], a["fv"]
        with np.errstate(all="ignore"):
            z = (x - st["mean"]) / st["std"]
            zc = np.clip(z, -CLIP, CLIP)
            rank = (np.searchsorted(knots, x, "left") + np.searchsorted(knots, x, "right")) / (2.0 * len(knots))
            quant = np.interp(x, ukn, ulev) if len(ukn) > 1 else np.full_like(x, 0.5)
            phase = 2 * np.pi * (x - st["min"]) / st["range"]
            freq = np.zeros_like(x)
            if len(fv):
                i = np.clip(np.searchsorted(fv, x), 0, len(fv) - 1)
                freq = np.where(fv[i] == x, a["fshares"][i], 0.0)
            std_ = {k: (raw[k] - st["feat_mean"][k]) / st["feat_std"][k] for k in _STANDARDISED}
            cols = [z, std_["log"], (x - st["median"]) / st["iqr"], rank, zc, (x - st["min"]) / st["range"], quant,
                    std_["yeojohnson"], std_["winsor"], 1 / (1 + np.exp(-zc)), 1 / (1 + np.abs(x) / st["inv_scale"]),
                    std_["clipped_log"], np.sin(phase), np.cos(phase), zc * zc, np.sign(zc) * np.sqrt(np.abs(zc)), freq]
            cont = np.stack(cols, axis=1)
        cont = np.clip(np.nan_to_num(cont, nan=0.0, posinf=CLIP, neginf=-CLIP), -CLIP, CLIP)
        cont[missing] = 0.0
        binned = np.stack([np.searchsorted(a["bucket_edges"], x, "right"), x > 0, x < 0,
                           (x < st["outlier_lo"]) | (x > st["outlier_hi"]),
                           np.searchsorted(a["coarse_edges"], x, "right")], axis=1).astype(np.int64)
        binned[missing] = 0
        recon = np.where(missing, 0.0, np.nan_to_num(zc, nan=0.0))
        return {"continuous": torch.from_numpy(cont.astype(np.float32)),
                "binned": torch.from_numpy(binned),
                "missing": torch.from_numpy(missing),
                "recon_target": torch.from_numpy(recon.astype(np.float32))}

    # ------------------------------------------------------------------ state / kwargs / report

    def get_state(self) -> dict:
        return dict(self.state_)

    def set_state(self, state: dict) -> "ScalarCodec":
        self.state_ = dict(state)
        return self

    def bin_sizes(self) -> list[int]:
        st = self.state_
        return [len(st["bucket_edges"]) + 1, 2, 2, 2, len(st["coarse_edges"]) + 1]

    def _strategy_bias(self) -> tuple[list[float], list[str]]:
        """§5.1: "high skewness favors Log and Yeo-Johnson; high outlier ratio favors Robust and
        Rank; bounded ranges favor Min-Max; many zeros favor Bucket and Is-Positive."

        Thresholds: |skewness| > 1; Tukey outlier ratio (beyond 1.5·IQR) > 5%; bounded = range ≤
        4σ (uniform-like fill of a fixed range; a uniform has range = 3.46σ, a normal sample of
        thousands ≈ 7σ) or all values in [0, 1]; zero ratio > 30%. Each applied rule adds
        +1.0 (skewness: up to +2.0, growing with |skew|) to the strategies' initial logits.
        """
        st, bias, why = self.state_, [0.0] * len(STRATEGIES), []

        def add(names: list[str], amount: float, reason: str) -> None:
            for nm in names:
                bias[STRATEGIES.index(nm)] += amount
            labels = [STRATEGY_LABELS[STRATEGIES.index(nm)] for nm in names]
            why.append(f"favoured {' and '.join(labels)} (+{amount:.1f}) because {reason}")

        if abs(st["skewness"]) > 1.0:
            add(["log", "yeojohnson"], min(2.0, 0.5 + abs(st["skewness"]) / 4),
                f"the values are skewed (skewness {st['skewness']:.2f})")
        if st["outlier_ratio"] > 0.05:
            add(["robust", "rank"], 1.0, f"{st['outlier_ratio']:.1%} of values are outliers beyond 1.5 IQR")
        if st["bounded"]:
            add(["minmax"], 1.0, f"the values fill a bounded range [{st['min']:.4g}, {st['max']:.4g}]")
        if st["zero_ratio"] > 0.3:
            add(["bucket", "is_positive"], 1.0, f"{st['zero_ratio']:.0%} of values are exactly zero")
        return bias, why

    def encoder_kwargs(self) -> dict:
        return {"n_continuous": len(CONTINUOUS_FEATURES), "bin_sizes": self.bin_sizes(),
                "strategy_bias": self._strategy_bias()[0], "name": self.name}

    def report(self) -> dict:
        st = self.state_
        keys = ["n_rows", "n_present", "n_unparseable", "unparseable_examples", "n_nonfinite", "min", "max",
                "mean", "std", "median", "iqr", "p01", "p99", "skewness", "outlier_ratio", "zero_ratio",
                "bounded", "yj_lambda"]
        out = {k: st[k] for k in keys}
        out["n_buckets"] = len(st["bucket_edges"]) + 1
        out["n_frequent_values"] = len(st["freq_values"])
        out["strategy_bias"] = self._strategy_bias()[1] or ["no initial bias: no skew, outliers, bounded range "
                                                             "or zero mass stood out"]
        return out


_STANDARDISED = ["log", "yeojohnson", "winsor", "clipped_log"]
