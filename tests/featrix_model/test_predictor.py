"""Predictors on an embedding space: imbalance, calibration, guardrails, explanations, schema, save/load."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model import EmbeddingSpace
from featrix_model.predictor import Predictor
from tests.conftest import REPO

torch.set_num_threads(1)
SCHEMA = json.loads((REPO / "schemas" / "prediction.schema.json").read_text())


def table(n=3000, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    driver = rng.normal(size=n)
    noise1, noise2 = rng.normal(size=n), rng.normal(size=n)
    region = rng.choice(["north", "south", "east", "west"], n)
    score = driver + 0.15 * rng.normal(size=n)
    return pd.DataFrame({
        "driver": driver, "noise1": noise1, "noise2": noise2, "region": region,
        "churned": score > np.quantile(score, 0.97),  # 3 % minority
        "tier": np.where(driver > 0.5, "gold", np.where(driver > -0.5, "silver", "bronze")),
        "spend": np.exp(1.0 + 0.8 * driver + 0.3 * rng.normal(size=n)),
    })


@pytest.fixture(scope="module")
def space_and_data():
    df = table()
    es = EmbeddingSpace.fit(df, time_budget_s=15, seed=0, progress=False)
    return es, df


@pytest.fixture(scope="module")
def binary(space_and_data):
    es, df = space_and_data
    return Predictor.fit(es, df, target="churned", exclude_features=("tier", "spend"), seed=0)


def validate(responses):
    for r in responses:
        jsonschema.validate(r, SCHEMA)


def test_minority_class_is_found_not_single_class(binary, space_and_data):
    _, df = space_and_data
    p = binary
    assert p.config["kind"] == "binary" and p.config["positive_label"] is True
    w = p.config["class_weights"]
    assert w[1] / w[0] == pytest.approx(np.sqrt(0.97 / 0.03), rel=0.05)  # sqrt-inverse frequency (spec §17)
    assert np.mean(w) == pytest.approx(1.0)
    out = p.predict_frame(df, explain=False)
    pred = out["prediction"].astype(bool).to_numpy()
    truth = df["churned"].to_numpy()
    assert 0.005 < pred.mean() < 0.2  # not single-class
    recall = (pred & truth).sum() / truth.sum()
    assert recall > 0.5
    assert "SINGLE_CLASS_BIAS" not in p.config.get("final_failures", [])


def test_calibration_is_chosen_and_recorded(binary):
    cal = binary.config["calibration"]
    assert cal["method"] in ("temperature", "platt", "isotonic", "none")
    assert set(cal["scores"]) >= {"temperature", "platt", "isotonic"}
    assert cal["ece_after"] < 0.1
    assert 0 < binary.config["threshold"] < 1 and binary.config["threshold_reason"]


def test_responses_validate_against_schema_and_explain_the_driver(binary, space_and_data):
    _, df = space_and_data
    rows = df.drop(columns=["churned"]).iloc[:40]
    res = binary.predict(rows)
    validate(res)
    top = [max(r["feature_importance"], key=lambda c: abs(r["feature_importance"][c])) for r in res]
    assert top.count("driver") >= 30
    assert "churned" not in res[0]["feature_importance"] and "tier" not in res[0]["feature_importance"]
    assert res[0]["metadata"]["class_distribution_train"] and "optimal_threshold" in res[0]["metadata"]


def test_far_out_row_gets_the_ood_warning(binary, space_and_data):
    _, df = space_and_data
    normal = binary.predict(df.drop(columns=["churned"]).iloc[[0]])[0]
    weird = binary.predict({"driver": 1e6, "noise1": -1e6, "noise2": 1e6, "region": "atlantis"})[0]
    validate([weird])
    assert normal["ood_sigma"] < 2 and not normal["warnings"]
    assert weird["ood_sigma"] > 3 and "unlike training data" in weird["warnings"][0]
    assert weird["confidence"] == "low"


def test_save_load_predicts_identically(binary, space_and_data, tmp_path):
    _, df = space_and_data
    binary.save(tmp_path / "p")
    again = Predictor.load(tmp_path / "p")
    rows = df.drop(columns=["churned"]).iloc[:25]
    assert binary.predict(rows) == again.predict(rows)
    assert not any(f.suffix in (".pkl", ".pt") for f in (tmp_path / "p").rglob("*"))


def test_multiclass_probabilities(space_and_data):
    es, df = space_and_data
    p = Predictor.fit(es, df, target="tier", exclude_features=("churned", "spend"), seed=0)
    assert p.config["kind"] == "multiclass"
    res = p.predict(df.iloc[:30], explain=False)
    validate(res)
    acc = np.mean([r["prediction"] == t for r, t in zip(res, df["tier"].iloc[:30])])
    assert acc > 0.8
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in res)


def test_regression_intervals_cover_their_nominal_share(space_and_data):
    es, df = space_and_data
    p = Predictor.fit(es, df.iloc[:2400], target="spend", exclude_features=("churned", "tier"), seed=0)
    assert p.config["kind"] == "regression" and p.config["log_target"]  # heavy tail → log transform
    held = df.iloc[2400:]
    res = p.predict(held.drop(columns=["spend"]), explain=False)
    validate(res)
    lo, hi = np.array([r["confidence_interval"] for r in res]).T
    cover = np.mean((held["spend"].to_numpy() >= lo) & (held["spend"].to_numpy() <= hi))
    assert 0.85 <= cover <= 0.99
    pred = np.array([r["prediction"] for r in res])
    assert np.corrcoef(np.log(pred), np.log(held["spend"]))[0, 1] > 0.8


def test_rows_without_target_are_reported_not_silently_dropped(space_and_data, caplog):
    es, df = space_and_data
    d = df.copy()
    d.loc[:9, "tier"] = None
    with caplog.at_level("INFO", logger="featrix_model"):
        p = Predictor.fit(es, d, target="tier", exclude_features=("churned", "spend"), seed=0, epochs=3)
    assert any("10 rows have no value for 'tier'" in m for m in p.config["decisions"])
    with pytest.raises(KeyError, match="not a column"):
        Predictor.fit(es, df, target="nope")


def test_fine_tune_trains_the_space_and_saves_it(space_and_data, tmp_path):
    es, df = space_and_data
    small = df.iloc[:800]
    p = Predictor.fit(es, small, target="tier", exclude_features=("churned", "spend"), seed=0, fine_tune=True, epochs=2)
    before = es.net.state_dict()
    after = p.space.net.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # encoder weights moved
    assert p.space is not es  # the caller's space is untouched
    p.save(tmp_path / "ft")
    again = Predictor.load(tmp_path / "ft")
    rows = small.drop(columns=["tier"]).iloc[:20]
    assert p.predict(rows, explain=False) == again.predict(rows, explain=False)
