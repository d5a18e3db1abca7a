"""Free text reaches the predictor: a linear model on each text column's sentence vector gives the
trees a score per row (``featrix_model.text_scores``), cross-fitted on the training rows.

The reviews are built from a positive and a negative vocabulary mixed with neutral filler, so the
label lives in the text's meaning and nowhere else; quality is measured on held-out rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from featrix_model import EmbeddingSpace, Predictor
from featrix_model.tasks import make_task
from featrix_model.text_scores import TextScores

torch.set_num_threads(1)
GOOD = ["wonderful", "delicious", "friendly", "superb", "lovely", "excellent", "great", "fantastic"]
BAD = ["awful", "cold", "rude", "terrible", "dirty", "bland", "horrible", "disappointing"]
THINGS = ["the soup", "our waiter", "the dessert", "the room", "the pasta", "the staff", "the view", "the coffee"]


def reviews(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    liked = rng.random(n) < 0.5
    text = []
    for ok in liked:
        words = rng.choice(GOOD if ok else BAD, 2, replace=False)
        flip = rng.choice(BAD if ok else GOOD)  # one word against the label: no single word decides
        a, b, c = rng.choice(THINGS, 3, replace=False)
        text.append(f"{a} was {words[0]}, {b} {words[1]}, though {c} was {flip}")
    return pd.DataFrame({"review": text, "visits": rng.integers(1, 9, n), "table": rng.choice(["in", "out"], n),
                         "liked": liked})


@pytest.fixture(scope="module")
def fitted():
    df, held = reviews(600, 0), reviews(300, 1)
    es = EmbeddingSpace.fit(df.drop(columns="liked"), time_budget_s=8, seed=0, progress=False)
    return es, df, held


def test_text_scores_carry_the_reviews_meaning_to_held_out_rows(fitted):
    es, df, held = fitted
    p = Predictor.fit(es, df, target="liked", seed=0)
    assert p.trees_ is not None and p.trees_.text.columns == ["review"], p.summary()["head"]
    chosen = roc_auc_score(held["liked"], p.predict_frame(held, explain=False)["probability"])
    mlp = Predictor.fit(es, df, target="liked", seed=0, head="mlp")
    alone = roc_auc_score(held["liked"], mlp.predict_frame(held, explain=False)["probability"])
    assert chosen >= 0.9 and chosen > alone, f"with text scores {chosen:.3f}, the MLP on the embedding alone {alone:.3f}"
    imp = pd.DataFrame([r["feature_importance"] for r in p.predict(held.drop(columns="liked").iloc[:30])])
    assert imp.abs().mean().idxmax() == "review"


def test_training_rows_get_cross_fitted_scores_that_cannot_memorise_a_random_label(fitted):
    es, df, _ = fitted
    rows = es.prepare(df)
    y = np.random.default_rng(3).integers(0, 2, len(df))  # no signal: any fit to it is memorised
    tr = np.arange(len(df))
    task = make_task("binary")
    y = task.fit_target(pd.Series(y), 1, [])
    text = TextScores.fit(rows, es.plan, (), y, tr, task, seed=0)
    oof = text.features(rows, out_of_fold=True)[:, 0]
    in_sample = text.features(rows)[:, 0]
    assert roc_auc_score(y, in_sample) > 0.6  # a model scoring its own training rows has learned the noise
    assert abs(roc_auc_score(y, oof) - 0.5) < 0.1  # cross-fitted scores have not


def test_folds_that_miss_classes_still_give_one_score_per_class():
    from featrix_model.text_scores import MISSING_CLASS, _fit_linear

    rng = np.random.default_rng(0)
    V, y = rng.normal(size=(40, 384)), np.array([1, 3] * 20)
    coef, icpt = _fit_linear(V, y, "multiclass", 4, seed=0)
    assert coef.shape == (4, 384) and icpt[0] == icpt[2] == MISSING_CLASS and icpt[1] == 0.0
    assert np.any(coef[3] != 0) and not np.any(coef[[0, 1, 2]])
    coef, icpt = _fit_linear(V, np.full(40, 2), "multiclass", 4, seed=0)
    assert icpt[2] == 0.0 and (icpt[[0, 1, 3]] == MISSING_CLASS).all()
    coef, icpt = _fit_linear(V, np.zeros(40), "binary", 2, seed=0)
    assert coef.shape == (1, 384) and icpt[0] == MISSING_CLASS  # class 1 absent: very unlikely
