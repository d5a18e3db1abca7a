"""The predictor's heads: the MLP on the embedding, gradient-boosted trees on the embedding ⊕ the raw
columns, and the blend chosen on the validation rows (``featrix_model.boosted``).

The planted task hides its signal in stripes of one scalar (label = which of 8 bands ``signal`` falls
in, alternately): the space's embedding blurs the band edges, trees on the raw value cut them exactly.
Quality is measured on ``held`` rows that neither the space nor the predictor saw; the label is never
among the space's inputs.
"""

from __future__ import annotations

import json

import jsonschema
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from featrix_model import EmbeddingSpace, Predictor
from featrix_model.boosted import BLEND_WEIGHTS, RawColumns, blend, choose_blend
from featrix_model.tasks import make_task
from tests.conftest import REPO

torch.set_num_threads(1)
FEATURES = ["signal", "noise0", "noise1", "noise2", "noise3", "colour"]


def planted(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, n)
    df = pd.DataFrame({"signal": x, **{f"noise{i}": rng.normal(size=n) for i in range(4)},
                       "colour": rng.choice(["red", "green", "blue"], n)})
    df["label"] = np.floor(x * 8) % 2 == 0
    return df


@pytest.fixture(scope="module")
def fitted():
    df, held = planted(2000, 0), planted(1000, 1)
    es = EmbeddingSpace.fit(df[FEATURES], time_budget_s=10, seed=0, progress=False)
    return es, df, held


@pytest.fixture(scope="module")
def auto(fitted):
    es, df, _ = fitted
    return Predictor.fit(es, df, target="label", seed=0)


def auc(p, held) -> float:
    return float(roc_auc_score(held["label"], p.predict_frame(held, explain=False)["probability"]))


def test_chosen_head_reaches_the_raw_models_auc_on_a_sharp_threshold(fitted, auto):
    es, df, held = fitted
    raw = lgb.LGBMClassifier(n_jobs=1, verbose=-1, random_state=0).fit(df[FEATURES[:-1]], df["label"])
    raw_auc = float(roc_auc_score(held["label"], raw.predict_proba(held[FEATURES[:-1]])[:, 1]))
    mlp_auc = auc(Predictor.fit(es, df, target="label", seed=0, head="mlp"), held)
    assert mlp_auc < raw_auc - 0.02, f"the planted task should be one the embedding blurs: MLP {mlp_auc:.4f} vs {raw_auc:.4f}"
    chosen = auc(auto, held)
    assert chosen >= raw_auc - 0.01, f"chosen head {auto.summary()['head']} AUC {chosen:.4f} vs raw LightGBM {raw_auc:.4f}"
    head = auto.summary()["head"]
    assert head["chosen"] in ("trees", "blend") and "signal" in head["raw_columns"]
    assert any(d.startswith("head: ") and "validation AUC" in d for d in auto.summary()["decisions"])


def test_importance_calibration_guardrails_and_schema_work_with_trees(fitted, auto):
    _, _, held = fitted
    schema = json.loads((REPO / "schemas" / "prediction.schema.json").read_text())
    rows = auto.predict(held.drop(columns="label").iloc[:40])
    for r in rows:
        jsonschema.validate(r, schema)
    mean = pd.DataFrame([r["feature_importance"] for r in rows]).abs().mean()
    # hiding the signal (MARGINAL in the embedding, its training median to the trees) moves scores most
    assert mean["signal"] > 3 * mean.drop("signal").max() and mean["signal"] > 0.05, mean.to_dict()
    probs = auto.predict_frame(held, explain=False)["probability"].to_numpy()
    assert 0.0 <= probs.min() and probs.max() <= 1.0 and auto.task_.calibration_["method"]
    far = held.drop(columns="label").iloc[:1].assign(noise0=40.0, noise1=-40.0, noise2=40.0)
    assert auto.predict(far)[0]["ood_sigma"] > auto.predict(held.drop(columns="label").iloc[:1])[0]["ood_sigma"]


def test_trees_survive_save_and_load_byte_for_byte(fitted, auto, tmp_path):
    _, _, held = fitted
    auto.save(tmp_path / "p")
    assert (tmp_path / "p" / "trees.json").exists()
    back = Predictor.load(tmp_path / "p")
    rows = held.drop(columns="label").iloc[:25]
    assert back.predict(rows) == auto.predict(rows)
    assert back.model_version_ == auto.model_version_ and back.summary()["head"] == auto.summary()["head"]


def test_same_data_and_seed_give_the_same_trees(fitted, auto):
    es, df, _ = fitted
    again = Predictor.fit(es, df, target="label", seed=0)
    assert again.trees_.model_string() == auto.trees_.model_string()
    assert again.model_version_ == auto.model_version_


def test_one_row_alone_gets_the_bytes_it_gets_among_others(fitted, auto):
    _, _, held = fitted
    rows = held.drop(columns="label").iloc[:30]
    assert auto.predict(rows.iloc[[7]])[0] == auto.predict(rows)[7]


def test_a_missing_or_hidden_value_reads_as_the_training_median_to_the_trees(fitted, auto):
    es, df, held = fitted
    rows = es.prepare(held.drop(columns="label").iloc[:20])
    X = es.encode(rows, hide=auto.hidden_)
    t = auto.trees_
    median = float(np.median(df["signal"]))  # of all rows; the training rows are 80 % of them
    blanked = t.outputs(X, rows, es.plan, blank=("signal",))
    at_median = t.outputs(X, rows.assign(signal=t.fill[t.raw.spans()["signal"][0] + (t.d if t.embedding else 0)]),
                          es.plan)
    assert np.array_equal(blanked, at_median) and not np.array_equal(blanked, t.outputs(X, rows, es.plan))
    assert abs(t.fill[t.raw.spans()["signal"][0] + (t.d if t.embedding else 0)] - median) < 0.05
    missing = t.outputs(X, rows.assign(signal=np.nan), es.plan)
    assert np.array_equal(missing, blanked)  # never LightGBM's silent 0 for a feature it never saw missing


def test_regression_blend_keeps_the_mlps_variance_and_mixes_the_means():
    mlp = np.array([[1.0, -0.5], [2.0, 0.3]], dtype=np.float32)
    trees = np.array([[3.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    out = blend(mlp, trees, 0.25, regression=True)
    assert np.allclose(out[:, 0], [2.5, 0.5]) and np.array_equal(out[:, 1], mlp[:, 1])
    assert np.array_equal(blend(mlp, trees, 1.0, regression=True), mlp)


def test_the_trees_head_predicts_a_regression_target_as_well_as_raw_lightgbm(fitted):
    """A step in the mean (the bands again, as a value): the trees' outputs are the mean, in the
    MLP's (mean, log variance) layout; trees alone and the chosen head on held-out rows come within
    10 % of raw LightGBM's RMSE, and the MLP's σ still gives intervals."""
    es, df, held = fitted
    value = (lambda d: 10.0 * (np.floor(d["signal"] * 8) % 2) + d["noise0"])
    df, held = df.assign(value=value(df)), held.assign(value=value(held))
    raw = lgb.LGBMRegressor(n_jobs=1, verbose=-1, random_state=0).fit(df[FEATURES[:-1]], df["value"])
    rmse = (lambda pred: float(np.sqrt(np.mean((np.asarray(pred, float) - held["value"].to_numpy()) ** 2))))
    raw_rmse = rmse(raw.predict(held[FEATURES[:-1]]))
    for head in ("trees", "auto"):
        p = Predictor.fit(es, df.drop(columns="label"), target="value", seed=0, head=head)
        out = p.predict_frame(held.drop(columns=["label", "value"]), explain=False)
        assert rmse(out["prediction"]) <= 1.1 * raw_rmse, (head, rmse(out["prediction"]), raw_rmse)
        assert p.summary()["head"]["chosen"] in ("trees", "blend")
    assert raw_rmse < 2.0  # the signal is learnable: noise0 alone has σ 1


def test_head_setting_is_checked_and_respected(fitted):
    es, df, _ = fitted
    with pytest.raises(ValueError, match="head='forest' is not one of"):
        Predictor.fit(es, df, target="label", head="forest")
    mlp = Predictor.fit(es, df, target="label", seed=0, head="mlp", epochs=2)
    assert mlp.trees_ is None and mlp.summary()["head"]["chosen"] == "mlp"
    trees = Predictor.fit(es, df, target="label", seed=0, head="trees", epochs=2)
    assert trees.blend_ == 0.0 and trees.summary()["head"]["chosen"] == "trees"


def test_raw_columns_leave_out_the_hidden_columns_and_read_unknown_categories_as_missing(fitted):
    es, df, _ = fitted
    raw = RawColumns.from_plan(es.plan, hidden=("noise3",))
    assert "noise3" not in raw.columns and "signal" in raw.columns and "colour" in raw.columns
    R = raw.matrix(es.prepare(pd.DataFrame({"signal": [0.3, None], "colour": ["red", "purple"]})), es.plan)
    colour = raw.spans()["colour"][0]
    assert R[0, raw.spans()["signal"][0]] == 0.3 and np.isnan(R[1, raw.spans()["signal"][0]])
    assert not np.isnan(R[0, colour]) and np.isnan(R[1, colour])


def test_blend_choice_prefers_the_mlp_on_ties_and_follows_the_better_head():
    task = make_task("binary")
    y = np.array([0, 1] * 50)
    good = np.column_stack([np.zeros(100), np.where(y == 1, 2.0, -2.0)]).astype(np.float32)
    noise = np.column_stack([np.zeros(100), np.random.default_rng(0).normal(size=100)]).astype(np.float32)
    assert choose_blend(good, good, y, task)[0] == BLEND_WEIGHTS[0] == 1.0
    assert choose_blend(noise, good, y, task)[0] < 1.0
