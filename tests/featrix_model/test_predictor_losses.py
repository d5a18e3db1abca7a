"""Predictor losses (spec §17): class weights, focal loss, loss choice, PR-AUC loss, regression."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from featrix_model.predictor_losses import (
    CrossEntropyLoss,
    FocalLoss,
    GaussianNLL,
    PRAUCLoss,
    build_loss,
    choose_loss,
    class_weights,
    focal_weight,
    should_log_transform,
)

torch.set_num_threads(1)


def _labels(n_major: int, n_minor: int) -> np.ndarray:
    return np.array([0] * n_major + [1] * n_minor)


def test_class_weight_table():
    w = class_weights(_labels(50, 50), 2)
    assert np.round(w, 2).tolist() == [1.0, 1.0]
    w = class_weights(_labels(84, 16), 2)
    assert round(w[0], 2) == 0.61
    assert abs(w[1] - 1.40) <= 0.01  # 1.392: spec rounds to 1.40
    assert round(w[1] / w[0], 1) == 2.3  # "Boost Factor 2.3x"
    w = class_weights(_labels(97, 3), 2)
    assert abs(w[1] / w[0] - 5.6) < 0.1  # "5.6x" (sqrt(97/3) = 5.69), not full inverse 32x
    assert w.mean() == pytest.approx(1.0)


def test_class_weights_absent_class_neutral():
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    assert w[2] == 1.0
    assert w.mean() == pytest.approx(1.0)
    assert w[1] > w[0]


@pytest.mark.parametrize("p_t,expected", [(0.97, 0.10), (0.80, 0.10), (0.60, 0.16), (0.30, 0.49), (0.10, 0.81)])
def test_focal_weight_table(p_t, expected):
    assert round(float(focal_weight(torch.tensor(p_t), 2.0, 0.1)), 2) == expected
    # Same factor through the module: logits [0, log(p/(1-p))] give p_t = p for target 1.
    logits = torch.tensor([[0.0, math.log(p_t / (1 - p_t))]])
    target = torch.tensor([1])
    ratio = FocalLoss()(logits, target) / F.cross_entropy(logits, target)
    assert round(float(ratio), 2) == expected


def test_focal_runtime_attributes_and_class_weights():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0], [-1.0, 1.0]])
    target = torch.tensor([0, 1, 1])
    loss = FocalLoss(gamma=2.0, min_weight=0.1)
    before = float(loss(logits, target))
    loss.gamma, loss.min_weight = 0.0, 1.0  # gamma 0 => plain CE
    assert float(loss(logits, target)) == pytest.approx(float(F.cross_entropy(logits, target)), rel=1e-6)
    assert before < float(loss(logits, target))
    w = torch.tensor([0.5, 1.5])
    weighted = FocalLoss(gamma=0.0, min_weight=0.0, class_weights=w)(logits, target)
    assert float(weighted) == pytest.approx(float(F.cross_entropy(logits, target, weight=w)), rel=1e-6)


def test_cross_entropy_wrapper():
    logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 0.0, 0.1]])
    target = torch.tensor([0, 2])
    w = torch.tensor([1.0, 2.0, 0.5])
    got = CrossEntropyLoss(class_weights=w, label_smoothing=0.1)(logits, target)
    assert float(got) == pytest.approx(float(F.cross_entropy(logits, target, weight=w, label_smoothing=0.1)))
    # single-logit binary input is expanded to [0, z]
    z = torch.tensor([1.5, -0.5])
    y = torch.tensor([1, 0])
    assert float(CrossEntropyLoss()(z, y)) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(z, y.float())), rel=1e-6)


def test_choose_loss_rules():
    assert choose_loss(_labels(99, 1), 2)[0] == "prauc"
    assert choose_loss(_labels(97, 3), 2)[0] == "focal"
    assert choose_loss(_labels(84, 16), 2)[0] == "focal"
    name, reason = choose_loss(_labels(50, 50), 2)
    assert name == "cross_entropy" and reason
    assert choose_loss(_labels(50, 50), 2, cost_false_positive=1.0, cost_false_negative=5.0)[0] == "focal"
    assert choose_loss(_labels(99, 1), 2, requested="cross_entropy") == ("cross_entropy", "requested")
    assert choose_loss(np.zeros(10, dtype=int), 2)[0] == "cross_entropy"
    with pytest.raises(ValueError):
        choose_loss(_labels(50, 50), 2, requested="hinge")


def test_build_loss():
    w = torch.tensor([0.6, 1.4])
    assert isinstance(build_loss("focal", w), FocalLoss)
    ce = build_loss("cross_entropy", None, label_smoothing=0.2)
    assert isinstance(ce, CrossEntropyLoss) and ce.label_smoothing == 0.2
    assert isinstance(build_loss("prauc", w), PRAUCLoss)
    with pytest.raises(ValueError):
        build_loss("mse", None)


def test_prauc_prefers_positives_ranked_first():
    y = torch.tensor([1, 0, 0, 0, 0, 0, 0, 1])
    good = torch.where(y == 1, 2.0, -2.0)
    bad = -good
    loss = PRAUCLoss()
    assert float(loss(good, y)) < float(loss(bad, y))
    # Gradient descent on the scores improves the ranking loss.
    s = torch.zeros(8, requires_grad=True)
    opt = torch.optim.SGD([s], lr=0.5)
    first = None
    for _ in range(20):
        opt.zero_grad()
        val = loss(s, y)
        first = float(val.detach()) if first is None else first
        val.backward()
        opt.step()
    assert float(loss(s, y).detach()) < first
    assert s[y == 1].min() > s[y == 0].max()


def test_prauc_no_positive_batch_is_finite():
    y = torch.zeros(6, dtype=torch.long)
    logits = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = PRAUCLoss(ce_weight=0.1)
    val = loss(logits, y)
    assert torch.isfinite(val)
    s = (logits[:, 1] - logits[:, 0]).detach()
    expected = 0.1 * float(F.binary_cross_entropy_with_logits(s, y.float()))
    assert float(val.detach()) == pytest.approx(expected, rel=1e-6)
    val.backward()
    assert torch.isfinite(logits.grad).all()
    assert float(PRAUCLoss(ce_weight=0.0)(logits, y).detach()) == 0.0
    with pytest.raises(ValueError):
        loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))


def test_gaussian_nll():
    pred = torch.tensor([[1.0, 0.0], [2.0, math.log(4.0)]])
    y = torch.tensor([1.0, 4.0])
    expected = 0.5 * (0 + 0 + math.log(2 * math.pi)) + 0.5 * (math.log(4.0) + 4 / 4 + math.log(2 * math.pi))
    assert float(GaussianNLL()(pred, y)) == pytest.approx(expected / 2, rel=1e-6)
    # Matches torch's own (full) Gaussian NLL.
    ref = F.gaussian_nll_loss(pred[:, 0], y, pred[:, 1].exp(), full=True)
    assert float(GaussianNLL()(pred, y)) == pytest.approx(float(ref), rel=1e-5)


def test_should_log_transform():
    rng = np.random.default_rng(0)
    yes, reason = should_log_transform(rng.lognormal(0.0, 1.5, 2000))
    assert yes and "skew" in reason
    no, reason = should_log_transform(rng.normal(100.0, 10.0, 2000))
    assert not no and reason
    assert not should_log_transform(-rng.lognormal(0.0, 1.5, 2000))[0]  # negative values
    assert not should_log_transform(np.array([1.0, 2.0]))[0]
