"""Predictors on an embedding space: imbalance, calibration, guardrails, explanations, schema, save/load,
determinism.

Quality is measured on ``held`` rows, drawn fresh from the same distribution, that neither the space
nor the predictor ever saw. Fits use the default path (the epoch count comes from the fixed cost
model, never a timer) or explicit ``epochs=``.
"""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model import EmbeddingSpace, head
from featrix_model.calibration import NLL_TIE, expected_calibration_error
from featrix_model.predictor import Predictor
from featrix_model.tasks import TaskType, make_task, softmax
from tests.conftest import REPO

torch.set_num_threads(1)
SCHEMA = json.loads((REPO / "schemas" / "prediction.schema.json").read_text())
TARGETS = ["churned", "tier", "spend", "lapsed"]


def table(n=3000, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    driver = rng.normal(size=n)
    noise1, noise2 = rng.normal(size=n), rng.normal(size=n)
    region = rng.choice(["north", "south", "east", "west"], n)
    score = driver + 0.15 * rng.normal(size=n)
    return pd.DataFrame({
        "driver": driver, "noise1": noise1, "noise2": noise2, "region": region,
        "churned": score > 1.9,  # ~3 % minority (the 97th percentile of N(0, 1.01))
        "tier": np.where(driver > 0.5, "gold", np.where(driver > -0.5, "silver", "bronze")),
        "spend": np.exp(1.0 + 0.8 * driver + 0.3 * rng.normal(size=n)),
        "lapsed": driver + 0.7 * rng.normal(size=n) > 1.6,  # ~10 %, noisy: probabilities in between matter
    })


def others(target):
    return tuple(t for t in TARGETS if t != target)


@pytest.fixture(scope="module")
def space_and_data():
    df = table()
    es = EmbeddingSpace.fit(df, time_budget_s=15, seed=0, progress=False)
    return es, df


@pytest.fixture(scope="module")
def held():
    return table(2000, seed=1)


@pytest.fixture(scope="module")
def binary(space_and_data):
    es, df = space_and_data
    return Predictor.fit(es, df, target="churned", exclude_features=others("churned"), seed=0)


@pytest.fixture(scope="module")
def multiclass(space_and_data):
    es, df = space_and_data
    return Predictor.fit(es, df, target="tier", exclude_features=others("tier"), seed=0)


def validate(responses):
    for r in responses:
        jsonschema.validate(r, SCHEMA)


def raw_and_calibrated(p, rows):
    """Held-out raw softmax of the head and the predictor's calibrated probabilities."""
    _, logits = p._outputs(p.space.prepare(rows, p.hidden_))
    return softmax(logits), p.task_.scores(logits)


# ---------------------------------------------------------------------------------- binary


def test_minority_class_is_found_on_held_out_rows(binary, held):
    s = binary.summary()
    assert s["kind"] == "binary" and s["positive_label"] is True
    w = s["class_weights"]
    share = binary.task_.class_distribution_train_["True"]
    assert w[1] / w[0] == pytest.approx(np.sqrt((1 - share) / share), rel=1e-6)  # sqrt-inverse frequency (spec §17)
    assert np.mean(w) == pytest.approx(1.0)
    m = binary.task_.metrics(held["churned"], binary.predict_frame(held.drop(columns=TARGETS), explain=False))
    pred = binary.predict_frame(held.drop(columns=TARGETS), explain=False)["prediction"].astype(bool).to_numpy()
    truth = held["churned"].to_numpy()
    assert 0.005 < pred.mean() < 0.2  # neither single-class nor flooding the minority
    assert (pred & truth).sum() / truth.sum() > 0.6  # held-out minority recall
    assert m["roc_auc"] > 0.97 and m["macro_f1"] > 0.75
    assert "SINGLE_CLASS_BIAS" not in s["final_failures"]


def test_the_loss_carries_the_reported_class_weights(binary, space_and_data):
    _, df = space_and_data
    task = make_task(TaskType.BINARY)  # the fixture's task stays as fitted
    y = task.fit_target(df["churned"], None, [])
    tr, _ = task.split(y, binary.settings.validation_fraction, [])
    criterion = task.criterion(y[tr], binary.settings, [])
    assert task.class_weights_ == binary.summary()["class_weights"]
    assert criterion.class_weights.tolist() == pytest.approx(task.class_weights_)
    logits, target = torch.tensor([[2.0, -1.0], [0.0, 0.5]]), torch.tensor([0, 1])
    unweighted = type(criterion)(class_weights=None)
    assert float(criterion(logits, target)) > float(unweighted(logits, target)) * 1.2  # the minority row counts more


@pytest.fixture(scope="module")
def lapsed(space_and_data):
    """A noisy 10 % target: class weights and focal loss leave the raw softmax far off the observed rates."""
    es, df = space_and_data
    return Predictor.fit(es, df, target="lapsed", exclude_features=others("lapsed"), seed=0)


def test_calibration_is_the_cross_fitted_best_and_improves_held_out_ece(lapsed, held):
    p = lapsed
    cal = p.summary()["calibration"]
    scores = cal["scores"]
    assert set(scores) == {"none", "temperature", "platt", "isotonic"}
    best = min(v["nll"] for v in scores.values())
    tied = [m for m, v in scores.items() if v["nll"] <= best + NLL_TIE]
    assert cal["method"] == min(tied, key=lambda m: scores[m]["ece"])  # the selection rule, on recorded scores
    assert cal["method"] != "none" and scores[cal["method"]]["nll"] < scores["none"]["nll"]
    raw, calibrated = raw_and_calibrated(p, held.drop(columns=TARGETS))
    y = held["lapsed"].to_numpy().astype(int)
    before, after = expected_calibration_error(raw, y), expected_calibration_error(calibrated, y)
    assert after < 0.3 * before and after < 0.04, (before, after)
    assert cal["ece_after"] < 0.05  # the validation rows agree with the held-out ones


def test_the_f1_threshold_beats_one_half_on_held_out_rows(lapsed, held):
    s = lapsed.summary()
    assert 0 < s["threshold"] < 0.5 and "F1-optimal" in s["threshold_reason"]
    out = lapsed.predict_frame(held.drop(columns=TARGETS), explain=False)
    y = held["lapsed"].to_numpy()
    f1 = lapsed.task_.metrics(y, out)["macro_f1"]
    at_half = lapsed.task_.metrics(y, out.assign(prediction=out["probability"] >= 0.5))["macro_f1"]
    assert f1 > at_half + 0.01, (f1, at_half)


def test_responses_validate_against_schema_and_explain_the_driver(binary, held):
    rows = held.drop(columns=["churned"]).iloc[:100]  # a mean over 40 rows moved with a few outliers
    res = binary.predict(rows)
    validate(res)
    imp = pd.DataFrame([r["feature_importance"] for r in res]).abs()
    assert (imp.idxmax(axis=1) == "driver").sum() >= 75
    rest = imp.drop(columns="driver")
    # Typical rows: the driver moves the score by ~1e-2, a noise column by ~1e-4. Means are led by the
    # few rows near the threshold, where hiding any column moves the probability (0.28 for noise2 once),
    # so they only need to keep the driver well ahead; a 5x ratio of means flipped with float rounding.
    assert imp["driver"].median() > 0.003 and imp["driver"].median() > 20 * rest.median().max()
    assert imp["driver"].mean() > 0.01 and imp["driver"].mean() > 2 * rest.mean().max()
    assert not set(TARGETS) & set(res[0]["feature_importance"])  # hidden columns are never explained
    meta = res[0]["metadata"]
    assert meta["class_distribution_train"] and meta["optimal_threshold"] == binary.summary()["threshold"]
    assert meta["model_version"] == binary.summary()["model_version"]


def test_far_out_row_gets_the_ood_warning(binary, held):
    normal = binary.predict(held.drop(columns=["churned"]).iloc[[0]])[0]
    weird = binary.predict({"driver": 1e6, "noise1": -1e6, "noise2": 1e6, "region": "atlantis"})[0]
    validate([weird])
    assert normal["ood_sigma"] < 2 and not normal["warnings"]
    assert weird["ood_sigma"] > 3 and "unlike training data" in weird["warnings"][0]
    assert weird["confidence"] == "low"


# ---------------------------------------------------------------------------------- determinism


def test_same_data_and_seed_give_identical_bytes_even_on_a_slow_machine(binary, space_and_data, held, tmp_path,
                                                                       monkeypatch):
    es, df = space_and_data
    binary.save(tmp_path / "a")
    clock = iter(range(0, 10**9, 1000))  # every clock reading 1000 s later: a machine far over any budget
    monkeypatch.setattr(head.time, "monotonic", lambda: float(next(clock)))
    slow = Predictor.fit(es, df, target="churned", exclude_features=others("churned"), seed=0)
    monkeypatch.undo()
    slow.save(tmp_path / "b")
    for name in ("config.json", "model.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert slow.summary()["model_version"] == binary.summary()["model_version"]
    assert any(d.startswith("[WARN] training took") for d in slow.summary()["decisions"])  # the clock only warns
    assert not any("training took" in d for d in binary.summary()["decisions"])
    again = Predictor.load(tmp_path / "b")
    rows = held.drop(columns=["churned"]).iloc[:25]
    assert binary.predict(rows) == again.predict(rows)
    assert again.summary() == slow.summary()
    assert not any(f.suffix in (".pkl", ".pt") for f in (tmp_path / "b").rglob("*"))
    doc = json.loads((tmp_path / "a" / "config.json").read_text())
    assert set(doc) == {"format", "version", "settings", "fitted"} and doc["settings"]["target"] == "churned"


def test_the_seed_reaches_every_random_generator(space_and_data, monkeypatch):
    import sklearn.ensemble

    from featrix_model import calibration

    es, df = space_and_data
    seen = {"numpy": [], "forest": [], "folds": [], "torch": [], "epoch_order": []}

    def spy(key, real, pick):
        def wrapped(*a, **k):
            seen[key].append(pick(*a, **k))
            return real(*a, **k)
        return wrapped

    monkeypatch.setattr(np.random, "default_rng", spy("numpy", np.random.default_rng, lambda s=None: s))
    for name in ("RandomForestClassifier", "RandomForestRegressor"):
        monkeypatch.setattr(sklearn.ensemble, name, spy("forest", getattr(sklearn.ensemble, name),
                                                        lambda **k: k.get("random_state")))
    for name in ("StratifiedKFold", "KFold"):
        monkeypatch.setattr(calibration, name, spy("folds", getattr(calibration, name),
                                                   lambda *a, **k: k.get("random_state")))
    monkeypatch.setattr(torch, "manual_seed", spy("torch", torch.manual_seed, lambda s: s))
    monkeypatch.setattr(torch, "randperm", spy("epoch_order", torch.randperm,
                                               lambda n, generator=None: generator and generator.initial_seed()))
    p = Predictor.fit(es, df.iloc[:600], target="tier", exclude_features=others("tier"), seed=7, epochs=2)
    monkeypatch.undo()
    assert all(seen.values()), seen  # split and depth probe, forests, calibration folds, head init, epoch order
    assert {s for v in seen.values() for s in v} == {7}, seen
    assert p.task_.seed == 7 and p.task_.calibrator_.seed == 7


# ---------------------------------------------------------------------------------- other kinds


def test_multiclass_probabilities_on_held_out_rows(multiclass, held):
    s = multiclass.summary()
    assert s["kind"] == "multiclass" and s["primary_metric"] == "accuracy" and s["higher_is_better"]
    res = multiclass.predict(held.drop(columns=TARGETS).iloc[:30], explain=False)
    validate(res)
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in res)
    m = multiclass.task_.metrics(held["tier"], multiclass.predict_frame(held.drop(columns=TARGETS), explain=False))
    assert set(m) == {"accuracy", "macro_f1"} and m["accuracy"] > 0.85 and m["macro_f1"] > 0.8


def coverage(p, rows, y) -> float:
    lo, hi = np.array([r["confidence_interval"] for r in p.predict(rows, explain=False)]).T
    return float(np.mean((y >= lo) & (y <= hi)))


def test_regression_intervals_cover_their_nominal_share(space_and_data, held):
    es, df = space_and_data
    p = Predictor.fit(es, df, target="spend", exclude_features=others("spend"), seed=0)
    s = p.summary()
    assert s["kind"] == "regression" and s["log_target"] and s["primary_metric"] == "rmse"  # heavy tail → log
    assert not s["higher_is_better"]
    rows, y = held.drop(columns=TARGETS), held["spend"].to_numpy()
    res = p.predict(rows, explain=False)
    validate(res[:50])
    assert 0.935 <= coverage(p, rows, y) <= 0.965  # 95 % nominal, ± 2 binomial σ on 2,000 rows
    pred = np.array([r["prediction"] for r in res])
    assert np.corrcoef(np.log(pred), np.log(y))[0, 1] > 0.9
    m = p.task_.metrics(y, pd.DataFrame(res))
    assert set(m) == {"rmse", "r2", "coverage_90", "coverage_95"} and m["r2"] > 0.5  # raw scale: the heavy tail caps R²
    assert abs(m["coverage_90"] - 0.90) <= 0.03 and abs(m["coverage_95"] - 0.95) <= 0.03  # held-out rows
    assert all(r["intervals"]["95"][0] <= r["intervals"]["90"][0] <= r["prediction"] <= r["intervals"]["90"][1]
               <= r["intervals"]["95"][1] for r in res)
    assert res[0]["confidence_interval"] == res[0]["intervals"]["95"]
    assert res[0]["metadata"]["interval_levels"] == [0.9, 0.95]
    assert any(d.startswith("intervals: split-conformal on") for d in s["decisions"])
    # After 3 epochs the head's σ is still far too wide (~99 % coverage unscaled): the interval scale fixes it.
    early = Predictor.fit(es, df, target="spend", exclude_features=others("spend"), seed=0, epochs=3, n_hidden_layers=2)
    assert early.summary()["sigma_scale"] < 0.85
    assert 0.935 <= coverage(early, rows, y) <= 0.965


def test_summary_is_json_and_settings_are_frozen(binary):
    s = binary.summary()
    assert json.loads(json.dumps(s)) == s
    assert {"target", "kind", "classes", "positive_label", "loss", "loss_reason", "class_weights", "threshold",
            "threshold_reason", "threshold_metrics", "calibration", "class_distribution_train", "final_failures",
            "fine_tune", "hidden", "n_hidden_layers", "decisions", "model_version", "fit_seconds", "epochs",
            "epochs_run", "primary_metric", "higher_is_better"} <= set(s)
    assert s["hidden"] == list(("churned", *others("churned"))) and s["fine_tune"] is False
    assert s["epochs"] == 200 and s["epochs_run"] == len(binary.timeline) <= 200
    assert binary.task_.kind is TaskType.BINARY and binary.settings.epochs is None
    with pytest.raises(FrozenInstanceError):
        binary.settings.seed = 1


def test_rows_without_target_are_reported_not_silently_dropped(space_and_data, caplog):
    es, df = space_and_data
    d = df.copy()
    d.loc[:9, "tier"] = None
    with caplog.at_level("INFO", logger="featrix_model"):
        p = Predictor.fit(es, d, target="tier", exclude_features=others("tier"), seed=0, epochs=3)
    assert any("10 rows have no value for 'tier'" in m for m in p.summary()["decisions"])
    assert any("10 rows have no value for 'tier'" in r.message for r in caplog.records)
    assert p.summary()["epochs"] == 3 and len(p.timeline) == 3
    with pytest.raises(KeyError, match="not a column"):
        Predictor.fit(es, df, target="nope")


def test_fine_tune_trains_the_space_and_saves_it(space_and_data, tmp_path):
    es, df = space_and_data
    small = df.iloc[:800]
    p = Predictor.fit(es, small, target="tier", exclude_features=others("tier"), seed=0, fine_tune=True, epochs=2)
    before = es.net.state_dict()
    after = p.space.net.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # encoder weights moved
    assert p.space is not es and p.summary()["fine_tune"] is True  # the caller's space is untouched
    p.save(tmp_path / "ft")
    again = Predictor.load(tmp_path / "ft")
    rows = small.drop(columns=["tier"]).iloc[:20]
    assert p.predict(rows, explain=False) == again.predict(rows, explain=False)


def test_the_cost_model_sets_the_epochs_not_a_clock():
    mlp = head.PredictorMLP(64, 128, 2, 2)
    epochs, budget, why = head.plan_epochs(mlp, 2400, 600, None, None)  # this file's tables: the 200 cap rules
    assert (epochs, budget) == (200, head.BUDGET_S) and "default cap" in why
    tight, _, why = head.plan_epochs(mlp, 2400, 600, None, 2.0)
    per_epoch = head.epoch_seconds(mlp, 2400, 600)
    assert tight == int(2.0 / per_epoch) < 200 and "budget affords" in why
    assert head.plan_epochs(mlp, 2400, 600, 5, None)[0] == 5
    big = head.PredictorMLP(64, 128, 2, 2)  # a 40K-row table (32K training rows): still the cap
    assert head.plan_epochs(big, 32_000, 8_000, None, None)[0] == 200
