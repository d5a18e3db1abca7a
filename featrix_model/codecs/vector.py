"""Pre-computed vectors (spec §5.5 "Vector/Embedding Encoding (VectorEncoder): Pre-computed vectors
from another model pass through directly or with optional MLP transformation").

Accepted cells: lists / tuples / 1-d numpy arrays of numbers, or strings holding a JSON list
("[0.1, 0.2]"). ``fit`` learns the dimension (the most common length among parseable values) and
per-dimension mean / std (std 0 → 1; computed on values scaled into [-1, 1] when the sums would
overflow). ``transform`` gives ``vector`` float32 (n, dim), standardised per dimension and clipped to
±10 (finite whatever the input, values near ±1e308 included), and ``missing`` bool (n,) for nulls,
unparseable cells, non-finite entries and vectors of the wrong length (their ``vector`` rows are
zeros). Strings are parsed once per distinct string; list cells are parsed per row (they are not
hashable), with numpy.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import torch

from featrix_model.codecs.base import Codec
from featrix_model.types import as_vector

CLIP = 10.0  # as the scalar and timestamp codecs: a standardised value beyond ±10 is clipped


def _parse(v: object) -> np.ndarray | None:
    """One cell → 1-d float64 array of finite numbers, or None (parsing shared with type detection)."""
    parsed = as_vector(v)
    if parsed is None:
        return None
    a = np.asarray(parsed, dtype=np.float64)
    return a if len(a) and np.isfinite(a).all() else None


def parse_vectors(values: pd.Series) -> list[np.ndarray | None]:
    """Per-row parsed vectors; each distinct string is parsed once."""
    s = pd.Series(values).reset_index(drop=True).astype(object)
    is_str = s.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    out: list[np.ndarray | None] = [None] * len(s)
    if is_str.any():
        codes, uniq = pd.factorize(s[is_str])
        parsed = [_parse(u) for u in uniq]
        for i, c in zip(np.flatnonzero(is_str), codes):
            out[i] = parsed[c]
    for i in np.flatnonzero(~is_str):
        out[i] = _parse(s.iat[i])
    return out


class VectorCodec(Codec):
    """Fixed-length numeric vectors, standardised per dimension."""

    semantic_type = "vector"

    def fit(self, values: pd.Series) -> "VectorCodec":
        vecs = parse_vectors(values)
        lens = Counter(len(v) for v in vecs if v is not None)
        if not lens:
            raise ValueError(f"vector column {self.name!r}: no value parses as a list of numbers")
        self.dim_ = max(lens, key=lambda k: (lens[k], k))
        good = [v for v in vecs if v is not None and len(v) == self.dim_]
        x = np.stack(good)
        with np.errstate(all="ignore"):
            mean, std = x.mean(axis=0), x.std(axis=0)
            if not (np.isfinite(mean).all() and np.isfinite(std).all()):  # sums overflow near ±1e308:
                top = np.abs(x).max(axis=0)  # the same statistics on values scaled into [-1, 1]
                scaled = x / np.where(top > 0, top, 1.0)
                mean, std = scaled.mean(axis=0) * top, scaled.std(axis=0) * top
        self.mean_ = np.where(np.isfinite(mean), mean, 0.0).tolist()
        self.std_ = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0).tolist()
        self.n_rows_, self.n_valid_ = len(vecs), len(good)
        self.n_wrong_length_ = sum(1 for v in vecs if v is not None and len(v) != self.dim_)
        return self

    def transform(self, values: pd.Series) -> dict[str, torch.Tensor]:
        vecs = parse_vectors(values)
        ok = np.array([v is not None and len(v) == self.dim_ for v in vecs], dtype=bool)
        x = np.zeros((len(vecs), self.dim_), dtype=np.float64)
        if ok.any():
            x[ok] = np.stack([v for v, k in zip(vecs, ok) if k])
            with np.errstate(all="ignore"):
                x[ok] = (x[ok] - np.asarray(self.mean_)) / np.asarray(self.std_)
        x = np.clip(np.nan_to_num(x, nan=0.0, posinf=CLIP, neginf=-CLIP), -CLIP, CLIP)  # finite for any input
        return {"vector": torch.from_numpy(x.astype(np.float32)), "missing": torch.from_numpy(~ok)}

    def get_state(self) -> dict:
        return {"dim": self.dim_, "mean": list(self.mean_), "std": list(self.std_), "n_rows": self.n_rows_,
                "n_valid": self.n_valid_, "n_wrong_length": self.n_wrong_length_}

    def set_state(self, state: dict) -> "VectorCodec":
        self.dim_, self.mean_, self.std_ = int(state["dim"]), list(state["mean"]), list(state["std"])
        self.n_rows_, self.n_valid_ = int(state["n_rows"]), int(state["n_valid"])
        self.n_wrong_length_ = int(state["n_wrong_length"])
        return self

    def encoder_kwargs(self) -> dict:
        return {"dim": self.dim_}

    def report(self) -> dict:
        return {"dim": self.dim_, "valid_share": round(self.n_valid_ / self.n_rows_, 4) if self.n_rows_ else 0.0,
                "wrong_length_rows": self.n_wrong_length_}


__all__ = ["VectorCodec", "parse_vectors"]
