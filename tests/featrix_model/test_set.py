"""SetCodec + SetEncoder (spec §5.3, §10 semantic floor, §1.2 booleans)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model.codecs.set import SetCodec
from featrix_model.encoders.set import SetEncoder
from featrix_model.codecs.base import expand

torch.set_num_threads(1)
D = 64
STATUS = pd.Series(["shipped"] * 40 + ["canceled"] * 10 + ["cancelled"] * 8 + ["CANCELLED"] * 6 + ["delivered"] * 30
                   + [None, "  ", float("nan")] + ["pending"] * 20)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.detach(), b.detach(), dim=-1))


@pytest.fixture(scope="module")
def codec() -> SetCodec:
    return SetCodec("status").fit(STATUS)


def test_vocabulary_by_frequency_and_transform_shapes(codec):
    assert codec.members_ == ["shipped", "delivered", "pending", "canceled", "cancelled", "CANCELLED"]
    b = expand(codec.transform(STATUS))
    n = len(STATUS)
    assert b["idx"].dtype == torch.int64 and b["idx"].shape == (n,)
    assert b["semantic"].dtype == torch.float32 and b["semantic"].shape == (n, 384)
    assert b["ordinal"].shape == (n,) and bool((b["ordinal"] == -1).all())  # statuses are not ordinal
    assert b["missing"].dtype == torch.bool and int(b["missing"].sum()) == 3
    assert int(b["idx"][0]) == 1 and bool((b["idx"][b["missing"]] == 0).all())
    assert codec.encoder_kwargs() == {"n_members": 6, "is_ordinal": False}
    rep = codec.report()
    assert rep["n_members"] == 6 and rep["top_members"][0]["value"] == "shipped" and rep["oov_share"] == 0.0


def test_state_round_trip_gives_identical_bytes(codec):
    again = SetCodec.from_config(json.loads(json.dumps(codec.to_config())))
    probe = pd.Series(["canceled", "returned", None, "shipped", "low"])
    a, b = expand(codec.transform(probe)), expand(again.transform(probe))
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].numpy().tobytes() == b[k].numpy().tobytes(), k


def test_codec_semantic_path_groups_spelling_variants(codec):
    s = expand(codec.transform(pd.Series(["canceled", "cancelled", "CANCELLED", "shipped"])))["semantic"]
    variants = [_cos(s[i], s[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    to_shipped = [_cos(s[i], s[3]) for i in range(3)]
    assert min(variants) > max(to_shipped) + 0.3


def test_fresh_encoder_output_groups_spelling_variants(codec):
    torch.manual_seed(0)
    enc = SetEncoder(D, **codec.encoder_kwargs()).eval()
    full, short = enc(expand(codec.transform(pd.Series(["canceled", "cancelled", "CANCELLED", "shipped"]))))
    assert full.shape == (4, D) and short.shape == (4, 3)
    assert torch.allclose(short.norm(dim=-1), torch.ones(4), atol=1e-5)
    # initial gate 0.38 learned, capped at 0.30 by the 70% semantic floor
    assert enc.report()["learned_share"] == pytest.approx(0.30, abs=1e-6)
    variants = [_cos(full[i], full[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    to_shipped = [_cos(full[i], full[3]) for i in range(3)]
    assert min(variants) > max(to_shipped)


def test_raw_gate_starts_at_038():
    enc = SetEncoder(D, n_members=3)
    enc.semantic_floor.fill_(0.0)
    batch = {"idx": torch.tensor([1, 2, 3]), "semantic": torch.randn(3, 384), "ordinal": -torch.ones(3),
             "missing": torch.zeros(3, dtype=torch.bool)}
    enc(batch)
    assert enc.report()["learned_share"] == pytest.approx(0.38, abs=1e-6)


def test_missing_rows_get_exactly_the_learned_replacement(codec):
    enc = SetEncoder(D, **codec.encoder_kwargs())
    b = expand(codec.transform(pd.Series(["shipped", None, "", "pending"])))
    full, short = enc(b)
    assert torch.equal(full[1], enc.missing_embedding.detach()) and torch.equal(full[2], enc.missing_embedding.detach())
    assert not torch.equal(full[0], enc.missing_embedding.detach())
    assert torch.allclose(short.norm(dim=-1), torch.ones(4), atol=1e-5)


def test_unseen_category_uses_the_semantic_path_only(codec):
    enc = SetEncoder(D, **codec.encoder_kwargs()).eval()
    b = expand(codec.transform(pd.Series(["Cancelled by customer", "shipped"])))
    assert b["idx"].tolist() == [0, 1] and not bool(b["missing"].any())
    full, _ = enc(b)
    with torch.no_grad():
        semantic_only = enc.semantic(b["semantic"][:1])
    assert torch.allclose(full[:1], semantic_only, atol=1e-6)
    assert not torch.allclose(full[1:], enc.semantic(b["semantic"][1:]), atol=1e-4)  # known: gate mixes in learned


def test_semantic_floor_caps_the_gate_and_relaxes():
    enc = SetEncoder(D, n_members=2)
    torch.nn.init.constant_(enc.gate[2].bias, 5.0)  # raw gate ≈ 0.993 learned
    batch = {"idx": torch.tensor([1, 2]), "semantic": torch.randn(2, 384), "ordinal": -torch.ones(2),
             "missing": torch.zeros(2, dtype=torch.bool)}
    enc(batch)
    assert enc.report()["learned_share"] == pytest.approx(0.3, abs=1e-6)
    notes = enc.on_epoch_end(5, 0.5)
    assert float(enc.semantic_floor) == pytest.approx(0.4) and notes
    enc(batch)
    assert enc.report()["learned_share"] == pytest.approx(0.6, abs=1e-6)
    enc.on_epoch_end(10, 1.0)
    enc(batch)
    assert enc.report()["learned_share"] == pytest.approx(0.9, abs=1e-6)
    state = enc.state_dict()
    again = SetEncoder(D, n_members=2)
    again.load_state_dict(state)
    assert float(again.semantic_floor) == pytest.approx(0.1)
    assert torch.equal(again.eval()(batch)[0], enc.eval()(batch)[0])


def test_ordinal_detection_low_medium_high():
    c = SetCodec("risk").fit(pd.Series(["high", "low", "Medium", "low", "high", None]))
    assert c.encoder_kwargs()["is_ordinal"] is True
    assert c.report()["ordinal_order"] == ["low", "Medium", "high"]
    r = expand(c.transform(pd.Series(["low", "Medium", "high", "very high", "banana", None])))["ordinal"].tolist()
    assert r[0] < r[1] < r[2] < r[3] <= 1.0 and r[4] == -1.0 and r[5] == -1.0
    num = SetCodec("stars").fit(pd.Series([1, 2, 3, 5, 2, 1]))
    assert num.encoder_kwargs()["is_ordinal"] and num.report()["ordinal_order"] == ["1", "2", "3", "5"]
    assert expand(num.transform(pd.Series([1, 5, 4])))["ordinal"].tolist() == pytest.approx([0.0, 1.0, 5 / 6])
    assert not SetCodec("zip").fit(pd.Series(["02134", "10001", "02134"])).encoder_kwargs()["is_ordinal"]
    for values in (["S", "M", "L", "XL"], ["strongly disagree", "agree", "neutral"], ["never", "often", "always"]):
        assert SetCodec().fit(pd.Series(values)).encoder_kwargs()["is_ordinal"], values


def test_ordinal_encoder_adds_order_features():
    c = SetCodec("risk").fit(pd.Series(["low", "medium", "high"] * 5))
    torch.manual_seed(0)
    enc = SetEncoder(D, **c.encoder_kwargs())
    assert enc.is_ordinal and hasattr(enc, "ordinal")
    b = expand(c.transform(pd.Series(["low", "high"])))
    full, _ = enc(b)
    b2 = dict(b, ordinal=-torch.ones(2))
    assert not torch.allclose(full, enc(b2)[0])
    full.sum().backward()
    assert enc.ordinal.weight.grad is not None and enc.learned.weight.grad is not None


def test_boolean_normalisation():
    values = pd.Series([True, "yes", "1", "t", "Y", 1, 1.0, False, "No", "0", "f", 0, None, "maybe"])
    c = SetCodec("active", semantic_type="boolean").fit(values)
    assert c.semantic_type == "boolean" and sorted(c.members_) == ["false", "maybe", "true"]
    assert c.encoder_kwargs()["is_ordinal"] is False
    idx = expand(c.transform(values))["idx"].tolist()
    t, f = c.index_["true"], c.index_["false"]
    assert idx[:7] == [t] * 7 and idx[7:12] == [f] * 5 and idx[12] == 0
    again = SetCodec.from_config(json.loads(json.dumps(c.to_config())))
    assert again.semantic_type == "boolean" and expand(again.transform(values))["idx"].tolist() == idx


def test_vocabulary_cap_sends_rare_members_to_oov():
    values = pd.Series(["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"])
    c = SetCodec("x", max_members=2).fit(values)
    assert c.members_ == ["a", "b"] and c.report()["oov_share"] == pytest.approx(4 / 13, abs=1e-4)
    assert expand(c.transform(pd.Series(["c", "d", "a"])))["idx"].tolist() == [0, 0, 1]


def test_sentence_model_called_once_per_distinct_string(embed_calls):
    calls = embed_calls
    values = pd.Series(np.random.default_rng(0).choice(["alpha", "beta", "gamma", "delta"], 5000))
    c = SetCodec("x").fit(values)
    expand(c.transform(values))
    sent = [t for call in calls for t in call]
    assert sorted(sent) == ["alpha", "beta", "delta", "gamma"]


def test_parameter_budget():
    enc = SetEncoder(D, n_members=100)
    assert sum(p.numel() for p in enc.parameters()) < 50_000
