"""StringCodec strategy detection + StringEncoder compression strategies and pruning (spec §5.2)."""

from __future__ import annotations

import json
import random
import uuid

import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model import sentence
from featrix_model.codecs.string import StringCodec
from featrix_model.encoders.string import StringEncoder
from featrix_model.codecs.base import expand

torch.set_num_threads(1)
D = 64
RNG = random.Random(0)
COLOURS = ["red", "green", "blue", "black", "white", "pink", "navy", "olive"]
LISTS = pd.Series([",".join(RNG.sample(COLOURS, RNG.randint(1, 4))) for _ in range(400)] + [None] * 10)
CODES = pd.Series([f"{''.join(RNG.choices('ABCDEFGH', k=3))}-{RNG.randint(10000, 99999)}" for _ in range(400)])
UUIDS = pd.Series([str(uuid.UUID(int=RNG.getrandbits(128), version=4)) for _ in range(400)])
TEXT = pd.Series([f"the {RNG.choice(['big', 'small', 'old'])} {RNG.choice(['dog', 'cat', 'bird'])} "
                  f"{RNG.choice(['ran away', 'slept all day', 'ate dinner'])} on day {i}" for i in range(300)])


def _shapes_ok(full: torch.Tensor, short: torch.Tensor, n: int) -> None:
    assert full.shape == (n, D) and short.shape == (n, 3)
    assert torch.allclose(short.norm(dim=-1), torch.ones(n), atol=1e-4)


def test_comma_lists_recommend_delim_attn():
    c = StringCodec("colours").fit(LISTS)
    assert "DELIM_ATTN" in c.recommended_ and c.delimiter_ == ","
    assert any("comma-delimited" in r and "DELIM_ATTN" in r for r in c.report()["reasons"])
    b = expand(c.transform(pd.Series(["red,green", "blue", None, ",".join(COLOURS + ["teal"])])))
    assert b["parts"].shape == (4, 8, 384) and b["parts"].dtype == torch.float32
    assert b["parts_mask"].sum(dim=1).tolist() == [2, 1, 0, 8]  # capped at 8 items
    red = sentence.embed(["red"])[0]
    assert np.allclose(b["parts"][0, 0].numpy(), red) and not b["parts"][0, 2:].any()
    enc = StringEncoder(D, **c.encoder_kwargs())
    assert "DELIM_ATTN" in enc.strategy_names and "RADIX" not in enc.strategy_names
    full, short = enc(b)
    _shapes_ok(full[[0, 1, 3]], short[[0, 1, 3]], 3)
    assert torch.isfinite(full).all()
    full.sum().backward()
    assert enc.strategies["DELIM_ATTN"].query.grad is not None


def test_fixed_width_codes_recommend_radix():
    c = StringCodec("part_no").fit(CODES)
    assert "RADIX" in c.recommended_ and "DELIM_ATTN" not in c.recommended_
    assert c.width_ == 9 and c.encoder_kwargs()["n_chars"] == 8 + 10 + 1  # A-H, digits, "-"
    b = expand(c.transform(pd.Series(["ABC-12345", "ZZZ-1", None])))
    assert b["chars"].shape == (3, 9) and b["chars"].dtype == torch.int64
    assert int(b["chars"][0, 3]) == c.char_index_["-"] and int(b["chars"][1, 0]) == 0  # unseen char → 0
    assert b["chars"][1, 5:].tolist() == [0] * 4 and b["chars"][2].tolist() == [0] * 9
    enc = StringEncoder(D, **c.encoder_kwargs())
    assert "RADIX" in enc.strategy_names
    full, short = enc(b)
    _shapes_ok(full[:2], short[:2], 2)


def test_uuids_recommend_zero_only():
    c = StringCodec("txn_id").fit(UUIDS)
    assert c.recommended_ == ["ZERO"]
    assert "ZERO" in c.report()["reasons"][0] and "UUID" in c.report()["reasons"][0]
    enc = StringEncoder(D, **c.encoder_kwargs())
    w = enc.report()["strategy_weights"]
    assert max(w, key=w.get) == "ZERO"


def test_plain_text_recommends_an_mlp_level_only():
    c = StringCodec("notes").fit(TEXT)
    assert c.recommended_ == ["STANDARD"] and c.delimiter_ is None and c.width_ == 0
    low = StringCodec("label").fit(pd.Series(["red apple", "green pear", "blue plum"] * 50))
    assert low.recommended_ == ["AGGRESSIVE"]


def test_prose_with_commas_is_not_delimited():
    prose = pd.Series([f"Well, the delivery number {i} arrived late, and the box was damaged badly" for i in range(50)])
    assert "DELIM_ATTN" not in StringCodec("review").fit(prose).recommended_


@pytest.mark.parametrize("values", [LISTS, CODES, TEXT], ids=["delim", "radix", "text"])
def test_state_round_trip_gives_identical_bytes(values):
    c = StringCodec("s").fit(values)
    again = StringCodec.from_config(json.loads(json.dumps(c.to_config())))
    probe = pd.concat([values.iloc[:20], pd.Series([None, "unseen thing", "QQQ-00000"])], ignore_index=True)
    a, b = expand(c.transform(probe)), expand(again.transform(probe))
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].numpy().tobytes() == b[k].numpy().tobytes(), k


def test_missing_rows_get_exactly_the_learned_replacement():
    c = StringCodec("notes").fit(TEXT)
    enc = StringEncoder(D, **c.encoder_kwargs())
    full, _ = enc(expand(c.transform(pd.Series(["a cat", None, "   "]))))
    assert torch.equal(full[1], enc.missing_embedding.detach()) and torch.equal(full[2], enc.missing_embedding.detach())
    assert not torch.equal(full[0], enc.missing_embedding.detach())


def test_pruning_keeps_exactly_two_strategies_after_warmup():
    c = StringCodec("colours").fit(LISTS)
    torch.manual_seed(0)
    enc = StringEncoder(D, **c.encoder_kwargs())
    assert len(enc.strategy_names) == 5 and enc.report()["active"] == enc.strategy_names
    assert enc.on_epoch_end(1, 0.10) == []  # still warming up
    notes = enc.on_epoch_end(2, 0.15)
    assert len(notes) == 1 and "kept" in notes[0]
    rep = enc.report()
    assert len(rep["active"]) == 2 and set(rep["active"]) == {"DELIM_ATTN", "STANDARD"}  # the recommended ones
    assert sum(v > 0 for v in rep["strategy_weights"].values()) == 2
    assert sum(rep["strategy_weights"].values()) == pytest.approx(1.0)
    assert enc.on_epoch_end(3, 0.5) == [] and len(enc.report()["active"]) == 2
    b = expand(c.transform(LISTS.iloc[:16]))
    again = StringEncoder(D, **c.encoder_kwargs())
    again.load_state_dict(enc.state_dict())
    assert again.report()["active"] == rep["active"]
    assert torch.equal(again.eval()(b)[0], enc.eval()(b)[0])


def test_pruned_strategies_are_not_computed(monkeypatch):
    enc = StringEncoder(D, recommended=["STANDARD"])
    with torch.no_grad():
        enc.logits.copy_(torch.tensor([0.0, 3.0, 0.0, 5.0]))  # ZERO, AGGRESSIVE, MODERATE, STANDARD
    enc.on_epoch_end(1, 0.2)
    assert enc.report()["active"] == ["AGGRESSIVE", "STANDARD"]

    def boom(*a, **k):
        raise AssertionError("pruned strategy ran")

    monkeypatch.setattr(enc.strategies["MODERATE"], "forward", boom)
    emb = torch.nn.functional.normalize(torch.randn(5, 384), dim=-1)
    full, _ = enc({"embedding": emb, "missing": torch.zeros(5, dtype=torch.bool)})
    assert full.shape == (5, D)


def test_sentence_model_called_once_per_distinct_string():
    sentence.clear_cache()
    c = StringCodec("colours").fit(LISTS)
    expand(c.transform(LISTS))
    texts = {str(v).strip() for v in LISTS.dropna()}
    parts = {p for t in texts for p in t.split(",")}
    info = sentence.cache_info()
    assert info["strings_encoded"] == len(texts | parts)
    expand(c.transform(LISTS))  # a second transform is served from the cache
    assert sentence.cache_info()["strings_encoded"] == info["strings_encoded"]


def test_parameter_budget():
    assert sum(p.numel() for p in StringEncoder(D).parameters()) < 50_000
