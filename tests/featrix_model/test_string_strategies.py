"""StringEncoder strategies with substance (spec §5.2): ZERO really removes a column's influence
through the joint encoder's ``LayerNorm(in_converter(x) + x)``, and AGGRESSIVE / MODERATE /
STANDARD outputs have the spec table's widths d_model/4, d_model/2, d_model."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest
import torch

from featrix_model.codecs.string import StringCodec
from featrix_model.encoders.string import StringEncoder
from featrix_model.joint import JointEncoder
from featrix_model.codecs.base import expand

torch.set_num_threads(1)
D = 64
RNG = random.Random(1)
TEXT = pd.Series([f"the {RNG.choice(['big', 'small', 'old'])} {RNG.choice(['dog', 'cat', 'bird'])} "
                  f"{RNG.choice(['ran away', 'slept all day', 'ate dinner'])} on day {i}" for i in range(200)])
WEIGHTS = [0.0, 0.25, 0.5, 0.75, 0.9, 0.99]


@pytest.fixture(scope="module")
def text():
    codec = StringCodec("notes").fit(TEXT)
    return codec, expand(codec.transform(TEXT))  # 200 distinct strings, real sentence embeddings


def _spread(t: torch.Tensor) -> float:
    """Row-to-row variation relative to the tokens' size: RMS distance to the mean row / RMS norm."""
    return float((t - t.mean(0)).pow(2).sum(1).mean().sqrt() / t.pow(2).sum(1).mean().sqrt())


def _set_zero_weight(enc: StringEncoder, w: float, partner: str = "STANDARD") -> None:
    """Only ZERO and ``partner`` active (as after pruning), ZERO carrying weight ``w``."""
    names = enc.strategy_names
    with torch.no_grad():
        enc.active.copy_(torch.tensor([n in ("ZERO", partner) for n in names]))
        logits = torch.zeros(len(names))
        logits[names.index("ZERO")] = 40.0 if w >= 1 else math.log(w / (1 - w)) if w > 0 else -40.0
        enc.logits.copy_(logits)


def _joint(zero_bias: bool) -> JointEncoder:
    torch.manual_seed(3)
    joint = JointEncoder(1, D).eval()
    if zero_bias:  # the in-converter is learned; without its bias LayerNorm is free to undo any scaling
        with torch.no_grad():
            joint.in_converters[0][0].bias.zero_()
            joint.in_converters[0][3].bias.zero_()
    return joint


def _column_tokens(joint: JointEncoder, x: torch.Tensor) -> torch.Tensor:
    """The column token exactly as JointEncoder.forward builds it."""
    return joint.in_norm(joint.in_converters[0](x) + x)


@pytest.mark.parametrize("zero_bias", [False, True], ids=["init", "zero-bias-converter"])
@pytest.mark.parametrize("partner,substantial", [("STANDARD", 0.2), ("AGGRESSIVE", 0.02)])  # untrained MLP: rows alike
def test_zero_weight_removes_row_variation_after_layernorm(text, zero_bias, partner, substantial):
    codec, batch = text
    torch.manual_seed(0)
    enc = StringEncoder(D, **codec.encoder_kwargs()).eval()
    joint = _joint(zero_bias)
    spreads, raw = [], []
    with torch.no_grad():
        for w in WEIGHTS + [1.0]:
            _set_zero_weight(enc, w, partner)
            x, _ = enc(batch)
            raw.append(_spread(x))
            c = enc.zero_vector()  # the constant part of every token is exactly w·c, the rest at most (1 − w)·√d
            assert torch.allclose(x @ c / D, torch.full((len(x),), w), atol=1e-5)
            assert (x - w * c).norm(dim=1).max() <= (1 - w) * D ** 0.5 + 1e-4
            spreads.append(_spread(_column_tokens(joint, x)))
    assert spreads[0] > substantial, spreads  # no ZERO weight: distinct strings give clearly distinct tokens
    assert all(a > b for a, b in zip(spreads, spreads[1:])), spreads  # falls monotonically with w_ZERO
    assert all(a > b for a, b in zip(raw, raw[1:])), raw  # already in the encoder's own output
    assert spreads[WEIGHTS.index(0.9)] < 0.25 * spreads[0], spreads  # LayerNorm does not undo it
    assert spreads[WEIGHTS.index(0.99)] < 0.03 * spreads[0], spreads
    assert spreads[-1] < 0.01 * spreads[0], spreads  # ZERO kept after pruning with all the weight
    with torch.no_grad():
        x, _ = enc(batch)
        tok = _column_tokens(joint, x)
    assert torch.allclose(tok, tok[:1].expand_as(tok), atol=1e-5)


def test_zero_alone_gives_one_token_and_one_row_embedding_for_every_row(text):
    codec, batch = text
    torch.manual_seed(0)
    enc = StringEncoder(D, **codec.encoder_kwargs()).eval()
    with torch.no_grad():
        enc.active.copy_(torch.tensor([n == "ZERO" for n in enc.strategy_names]))
    joint = _joint(zero_bias=True)
    with torch.no_grad():
        x, _ = enc(batch)
        emb, _ = joint(x.unsqueeze(1), torch.ones(len(x), 1, dtype=torch.bool))
    assert enc.report()["strategy_weights"]["ZERO"] == 1.0
    assert torch.equal(x, x[:1].expand_as(x))
    assert x[0].norm().item() == pytest.approx(D ** 0.5, rel=1e-4)  # a fixed scale, not zeros
    assert abs(x[0].mean().item()) < 1e-5  # centred: LayerNorm's mean subtraction cannot remove it
    assert torch.allclose(emb, emb[:1].expand_as(emb), atol=1e-6)


def test_strategy_outputs_have_a_fixed_scale(text):
    codec, batch = text
    torch.manual_seed(0)
    enc = StringEncoder(D, **codec.encoder_kwargs()).eval()
    for name in ("AGGRESSIVE", "MODERATE", "STANDARD"):
        with torch.no_grad():
            enc.active.copy_(torch.tensor([n == name for n in enc.strategy_names]))
            for scale in (1.0, 10.0):
                x, _ = enc(batch | {"embedding": batch["embedding"] * scale})
                assert torch.allclose(x.norm(dim=1), torch.full((len(x),), D ** 0.5), rtol=1e-4), name


@pytest.mark.parametrize("name,dims", [("AGGRESSIVE", D // 4), ("MODERATE", D // 2), ("STANDARD", D)])
def test_output_widths_follow_the_spec_table(name, dims):
    torch.manual_seed(0)
    enc = StringEncoder(D).eval()
    emb = torch.nn.functional.normalize(torch.randn(600, 384), dim=-1)
    with torch.no_grad():
        assert enc.strategies[name](emb).shape == (600, dims)
        enc.active.copy_(torch.tensor([n == name for n in enc.strategy_names]))
        full, _ = enc({"embedding": emb, "missing": torch.zeros(600, dtype=torch.bool)})
    s = torch.linalg.svdvals(full.double())
    rank = int((s > 1e-6 * s[0]).sum())
    assert rank == dims, (name, rank, s[dims - 2: dims + 2])  # spans exactly its width, no more
    if dims < D:
        assert not full[:, dims:].any()  # confined to a fixed dims-wide subspace of the token


def test_state_dict_round_trip_and_seed_give_identical_outputs(text):
    codec, batch = text
    torch.manual_seed(0)
    enc = StringEncoder(D, **codec.encoder_kwargs())
    with torch.no_grad():
        enc.logits.copy_(torch.tensor([1.5, 0.3, -0.2, 0.9])[: len(enc.strategy_names)])
        enc.zero_direction.mul_(3.0).add_(0.5)
    enc.on_epoch_end(1, 0.2)
    assert set(enc.report()["active"]) == {"ZERO", "STANDARD"}
    torch.manual_seed(123)
    again = StringEncoder(D, **codec.encoder_kwargs())
    again.load_state_dict(enc.state_dict())
    assert again.report() == enc.report()
    with torch.no_grad():
        a, b = enc.eval()(batch)[0], again.eval()(batch)[0]
    assert a.numpy().tobytes() == b.numpy().tobytes()
    torch.manual_seed(0)
    twin = StringEncoder(D, **codec.encoder_kwargs()).eval()
    torch.manual_seed(0)
    other = StringEncoder(D, **codec.encoder_kwargs()).eval()
    with torch.no_grad():
        assert twin(batch)[0].numpy().tobytes() == other(batch)[0].numpy().tobytes()
