"""Calibration and thresholds (spec §17 "Probability Calibration", §4.3)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.isotonic import IsotonicRegression

from featrix_model.calibration import (
    METHODS,
    NLL_TIE,
    Calibrator,
    _as_logits,
    best_threshold,
    expected_calibration_error,
    reliability_curve,
)


def _binary(n: int, seed: int, scale: float = 4.0, bias: float = -1.0):
    """True log-odds 1.5 x + bias; the "model" emits scale x the true log-odds (overconfident)."""
    rng = np.random.default_rng(seed)
    lo = 1.5 * rng.normal(size=n) + bias
    y = (rng.random(n) < 1 / (1 + np.exp(-lo))).astype(int)
    return scale * lo, y


def _multiclass(n: int, seed: int, k: int = 4, scale: float = 3.0):
    rng = np.random.default_rng(seed)
    z = 2.0 * rng.normal(size=(n, k))
    cum = softmax(z, axis=1).cumsum(axis=1)
    y = (rng.random(n)[:, None] > cum).sum(axis=1)
    return scale * z, y


def test_ece_perfect_and_known_gap():
    probs = np.array([[0.2, 0.8]] * 10)
    assert expected_calibration_error(probs, np.array([1] * 8 + [0] * 2)) == pytest.approx(0.0)
    assert expected_calibration_error(probs, np.array([1] * 5 + [0] * 5)) == pytest.approx(0.3)
    # multi-class: top-label confidence 0.9, accuracy 0.5 -> 0.4
    p3 = np.array([[0.9, 0.05, 0.05]] * 4)
    assert expected_calibration_error(p3, np.array([0, 0, 1, 2])) == pytest.approx(0.4)


def test_calibration_fixes_overconfident_binary():
    z_val, y_val = _binary(3000, 0)
    z_test, y_test = _binary(5000, 1)
    cal = Calibrator().fit(z_val, y_val)
    before = expected_calibration_error(softmax(_as_logits(z_test), axis=1), y_test)
    after = expected_calibration_error(cal.transform(z_test), y_test)
    assert before > 0.1
    assert after < before / 3
    assert cal.method_ in ("temperature", "platt")
    assert set(cal.scores_) == set(METHODS)
    assert cal.scores_[cal.method_]["nll"] < cal.scores_["none"]["nll"] - 0.1
    assert cal.method_ in cal.reason_
    if cal.method_ == "temperature":
        assert cal.params_["T"] == pytest.approx(4.0, rel=0.15)


def test_isotonic_does_not_win_by_memorising():
    # Already calibrated logits: cross-fitted isotonic must not beat the parametric / identity maps.
    z, y = _binary(3000, 2, scale=1.0)
    cal = Calibrator().fit(z, y)
    assert cal.method_ != "isotonic"
    assert cal.scores_["isotonic"]["nll"] > min(s["nll"] for s in cal.scores_.values())


def test_selection_is_lowest_out_of_fold_nll_then_lowest_ece_among_ties():
    z, y = _binary(3000, 6, scale=1.0)  # already calibrated: none / temperature / platt tie on NLL
    cal = Calibrator().fit(z, y)
    nll = {m: s["nll"] for m, s in cal.scores_.items()}
    tied = [m for m in METHODS if nll[m] <= min(nll.values()) + NLL_TIE]
    assert len(tied) > 1 and cal.method_ == min(tied, key=lambda m: cal.scores_[m]["ece"])
    assert cal.method_ != min(nll, key=nll.get)  # the tie-break decided, not the raw NLL order
    assert "tie" in cal.reason_


def test_cross_fitting_folds_follow_the_seed():
    z, y = _binary(600, 7)
    a, b, c = Calibrator(seed=0).fit(z, y), Calibrator(seed=0).fit(z, y), Calibrator(seed=1).fit(z, y)
    assert a.scores_ == b.scores_ and a.scores_ != c.scores_
    assert Calibrator.from_state(c.get_state()).seed == 1


def test_calibration_fixes_overconfident_multiclass():
    z_val, y_val = _multiclass(3000, 0)
    z_test, y_test = _multiclass(4000, 1)
    cal = Calibrator().fit(z_val, y_val)
    before = expected_calibration_error(softmax(z_test, axis=1), y_test)
    after = expected_calibration_error(cal.transform(z_test), y_test)
    assert after < before / 2
    assert cal.transform(z_test).shape == (4000, 4)


@pytest.mark.parametrize("method", ["none", "temperature", "platt", "isotonic"])
@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_each_method_round_trips(method, kind):
    z, y = _binary(600, 3) if kind == "binary" else _multiclass(600, 3)
    cal = Calibrator(methods=(method,)).fit(z, y)
    assert cal.method_ == method
    probs = cal.transform(z)
    k = 2 if kind == "binary" else 4
    assert probs.shape == (600, k)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(probs >= 0)
    state = json.loads(json.dumps(cal.get_state()))
    again = Calibrator.from_state(state)
    assert again.method_ == method
    np.testing.assert_array_equal(again.transform(z), probs)
    if method != "none":
        assert not np.allclose(probs, softmax(_as_logits(z), axis=1))


def test_isotonic_state_replays_sklearn():
    z, y = _binary(800, 4)
    cal = Calibrator(methods=("isotonic",)).fit(z, y)
    p = softmax(_as_logits(z), axis=1)[:, 1]
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    eps = cal.params_["eps"]
    np.testing.assert_allclose(cal.transform(z)[:, 1], np.clip(iso.predict(p), eps, 1 - eps), atol=1e-12)


def test_too_few_rows_is_none():
    cal = Calibrator().fit(np.array([1.0, -1.0, 2.0]), np.array([1, 0, 1]))
    assert cal.method_ == "none" and "too little" in cal.reason_


def _f1(p, y, t):
    pred = p >= t
    tp = (pred & (y == 1)).sum()
    return 2 * tp / max(pred.sum() + (y == 1).sum(), 1)


def test_f1_threshold_beats_half_on_imbalanced_task():
    def make(n, seed):
        rng = np.random.default_rng(seed)
        y = (rng.random(n) < 0.05).astype(int)
        score = rng.normal(size=n) + 1.8 * y
        prior = np.log(0.05 / 0.95)
        p = 1 / (1 + np.exp(-(prior + 1.8 * score - 1.62)))  # true posterior: low for most positives
        return p, y

    p_val, y_val = make(4000, 0)
    p_test, y_test = make(8000, 1)
    t, reason, metrics = best_threshold(p_val, y_val)
    assert t < 0.5 and "F1" in reason
    assert metrics["f1"] == pytest.approx(_f1(p_val, y_val, t))
    assert metrics["f1"] >= _f1(p_val, y_val, 0.5)
    assert _f1(p_test, y_test, t) > _f1(p_test, y_test, 0.5) + 0.05


def test_cost_threshold_moves_down_when_false_negatives_cost_more():
    p, y = _binary(3000, 5, scale=1.0)
    p = 1 / (1 + np.exp(-p))
    t_even, reason, m_even = best_threshold(p, y, cost_fp=1.0, cost_fn=1.0)
    t_fn, _, m_fn = best_threshold(p, y, cost_fp=1.0, cost_fn=10.0)
    assert "cost" in reason
    assert t_fn < t_even
    assert abs(t_even - 0.5) < 0.1  # calibrated probs, even costs -> near 0.5
    assert abs(t_fn - 1 / 11) < 0.06  # Bayes threshold cost_fp / (cost_fp + cost_fn)
    assert m_fn["fn"] < m_even["fn"]
    assert m_fn["expected_cost"] == pytest.approx((m_fn["fp"] + 10 * m_fn["fn"]) / len(y))


def test_threshold_no_positives_keeps_default():
    t, reason, _ = best_threshold(np.array([0.1, 0.4, 0.7]), np.array([0, 0, 0]))
    assert t == 0.5 and "no positive" in reason


def test_reliability_curve():
    p = np.array([0.05, 0.05, 0.15, 0.95, 0.95, 0.95, 0.95])
    y = np.array([0, 1, 0, 1, 1, 1, 0])
    rc = reliability_curve(p, y, n_bins=10)
    assert len(rc["bin_centers"]) == 10 and rc["bin_centers"][0] == pytest.approx(0.05)
    assert rc["counts"][0] == 2 and rc["counts"][9] == 4 and sum(rc["counts"]) == 7
    assert rc["observed_frequency"][0] == pytest.approx(0.5)
    assert rc["observed_frequency"][9] == pytest.approx(0.75)
    assert rc["observed_frequency"][5] is None
    json.dumps(rc)
