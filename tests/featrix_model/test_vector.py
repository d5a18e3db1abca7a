"""VectorCodec + VectorEncoder (spec §5.5 "Vector/Embedding Encoding")."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model.codecs.vector import VectorCodec
from featrix_model.encoders.vector import VectorEncoder

torch.set_num_threads(1)
D = 16
RNG = np.random.default_rng(0)
X = RNG.normal(loc=[5.0, -2.0, 0.0, 100.0], scale=[1.0, 0.1, 3.0, 20.0], size=(200, 4))


def _mixed() -> pd.Series:
    vals: list = [row for row in X[:100]]  # numpy arrays
    vals += [json.dumps(row.tolist()) for row in X[100:150]]  # JSON strings
    vals += [row.tolist() for row in X[150:]]  # lists
    vals += [None, [1.0, 2.0], "[1, 2, 3, 4, 5]", "not a vector", [1.0, float("nan"), 0.0, 0.0]]
    return pd.Series(vals, dtype=object)


def test_standardisation_and_wrong_length_is_missing():
    values = _mixed()
    c = VectorCodec("emb").fit(values)
    assert c.dim_ == 4 and c.encoder_kwargs() == {"dim": 4}
    b = c.transform(values)
    v, m = b["vector"], b["missing"]
    assert v.dtype == torch.float32 and v.shape == (205, 4)
    assert m[:200].sum() == 0 and m[200:].tolist() == [True] * 5
    assert torch.allclose(v[:200].mean(dim=0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(v[:200].std(dim=0, unbiased=False), torch.ones(4), atol=1e-4)
    assert not v[200:].any()
    assert np.allclose(c.mean_, X.mean(axis=0)) and c.report()["wrong_length_rows"] == 2


def test_state_round_trip_gives_identical_bytes():
    values = _mixed()
    c = VectorCodec("emb").fit(values)
    again = VectorCodec.from_config(json.loads(json.dumps(c.to_config())))
    a, b = c.transform(values), again.transform(values)
    for k in a:
        assert a[k].numpy().tobytes() == b[k].numpy().tobytes(), k


def test_no_vectors_fails_loudly():
    with pytest.raises(ValueError, match="no value parses"):
        VectorCodec("emb").fit(pd.Series(["a", None]))


def test_passthrough_when_dim_equals_d_model():
    vecs = RNG.normal(size=(30, D))
    c = VectorCodec("emb").fit(pd.Series(list(vecs), dtype=object))
    enc = VectorEncoder(D, **c.encoder_kwargs())
    assert enc.passthrough
    b = c.transform(pd.Series(list(vecs[:5]) + [None], dtype=object))
    full, short = enc(b)
    assert torch.allclose(full[:5], b["vector"][:5], atol=1e-6)
    assert torch.equal(full[5], enc.missing_embedding.detach())
    assert short.shape == (6, 3) and torch.allclose(short.norm(dim=-1), torch.ones(6), atol=1e-5)


def test_mlp_when_dims_differ():
    c = VectorCodec("emb").fit(pd.Series(list(X), dtype=object))
    enc = VectorEncoder(D, **c.encoder_kwargs())
    assert not enc.passthrough
    full, short = enc(c.transform(pd.Series(list(X[:7]), dtype=object)))
    assert full.shape == (7, D) and short.shape == (7, 3)
    full.sum().backward()
    assert enc.net[0].weight.grad is not None
    assert sum(p.numel() for p in VectorEncoder(64, 384).parameters()) < 30_000
