"""How good a predictor is: held-out metrics beside a LightGBM and a majority/mean baseline trained
on the same split, and the quality gate that the ``beats_baselines`` check applies.

Metrics come from the predictor's task object (``task.metrics``), so ours and both baselines are
scored by the same code; the baselines only produce a prediction frame (``prediction``, and
``probability`` of the positive class for a binary target).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from featrix_model.tasks import TaskType
from featrix_pipeline.scoring import row_hashes

TEST_FRACTION = 0.2
# how held-out rows are drawn and rows hashed, and whether the spaces leave them out (-2: they do; a
# version of another scheme is not compared with this one's): change it when any of these changes
SPLIT_SCHEME = "key-sha256-2"


def key_draws(keys: pd.DataFrame, seed: int) -> np.ndarray:
    """A seeded number in [0, 1) per row from its primary key alone: the same row draws the same
    number in every run, whatever rows were added or removed around it."""
    salted = keys.reset_index(drop=True).assign(**{"\x00seed": seed})
    return np.array([int(h, 16) for h in row_hashes(salted)], dtype=np.float64) / 2.0**64


def held_out_split(keys: pd.DataFrame, seed: int) -> np.ndarray:
    """True for the rows held out from training: a seeded ``TEST_FRACTION`` of them, chosen by key, so
    a row held out once is held out in every version (and a new version can be compared with the
    serving one on rows neither trained on)."""
    return key_draws(keys, seed) < TEST_FRACTION


def _lightgbm_inputs(X_tr: pd.DataFrame, X_te: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Datetimes as epoch seconds, text and booleans as categories (the test split uses the
    training categories), numbers as they are."""
    def prep(X):
        X = X.copy()
        for c in X.columns:
            if pd.api.types.is_datetime64_any_dtype(X[c]):
                X[c] = X[c].astype("int64") // 10**9
            elif not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]):
                X[c] = X[c].astype("string").astype("category")
        return X

    tr, te = prep(X_tr), prep(X_te)
    for c in tr.columns:
        if isinstance(tr[c].dtype, pd.CategoricalDtype):
            te[c] = pd.Categorical(te[c].astype("string"), categories=tr[c].cat.categories)
    # LightGBM refuses feature names with JSON characters (quotes, commas, braces, ...): it sees
    # positions, the columns keep their own names everywhere else
    tr.columns = te.columns = [f"f{i}" for i in range(tr.shape[1])]
    return tr, te


def lightgbm_baseline(task, X_tr: pd.DataFrame, y_tr, X_te: pd.DataFrame, seed: int) -> pd.DataFrame:
    """LightGBM with its defaults (1 thread) on the same rows: a prediction frame for ``task.metrics``."""
    import lightgbm as lgb

    tr, te = _lightgbm_inputs(X_tr, X_te)
    params = {"random_state": seed, "n_jobs": 1, "verbose": -1}
    if task.kind == TaskType.REGRESSION:
        return pd.DataFrame({"prediction": lgb.LGBMRegressor(**params).fit(tr, y_tr).predict(te)})
    if task.kind == TaskType.BINARY:
        positive = task.is_positive(y_tr)
        m = lgb.LGBMClassifier(**params).fit(tr, positive)
        proba = m.predict_proba(te)[:, list(m.classes_).index(True)]
        return _binary_frame(task, m.predict(te).astype(bool), proba)
    m = lgb.LGBMClassifier(**params).fit(tr, pd.Series(y_tr).astype(str))
    return pd.DataFrame({"prediction": m.predict(te)})


def naive_baseline(task, y_tr, n: int) -> pd.DataFrame:
    """The training mean (regression) or the training majority class, for every held-out row."""
    if task.kind == TaskType.REGRESSION:
        return pd.DataFrame({"prediction": np.full(n, float(np.mean(np.asarray(y_tr, dtype=float))))})
    if task.kind == TaskType.BINARY:
        return _binary_frame(task, np.full(n, bool(task.is_positive(y_tr).mean() > 0.5)), np.full(n, 0.5))
    return pd.DataFrame({"prediction": np.full(n, pd.Series(y_tr).astype(str).mode()[0], dtype=object)})


def _binary_frame(task, positive: np.ndarray, probability: np.ndarray) -> pd.DataFrame:
    """Binary decisions as labels the task scores: the positive label, or anything else."""
    negative = next((c for c in task.classes_ if str(c) != str(task.positive_label_)), "not positive")
    labels = np.where(positive, str(task.positive_label_), str(negative))
    return pd.DataFrame({"prediction": labels, "probability": probability})


def quality_gate(summary: dict, margin: float = 0.02) -> tuple[bool, str]:
    """Beats the majority/mean baseline and trails LightGBM by no more than ``margin`` (relative), on
    the predictor's primary metric (``summary``: what ``train_predictor`` returns)."""
    m = summary["primary_metric"]
    ours, lgb, base = summary["metrics"][m], summary["lightgbm"][m], summary["baseline"][m]
    if summary["higher_is_better"]:
        ok = ours > base and ours >= lgb * (1 - margin)
    else:
        ok = ours < base and ours <= lgb * (1 + margin)
    rows = summary.get("rows_test")
    seen = ("" if rows is None else f" on {rows:,} held-out rows that neither the predictor nor its space trained on"
            if summary.get("split_scheme") == SPLIT_SCHEME else f" on {rows:,} held-out rows (its space, from before "
            "spaces left them out, trained on them)")
    return ok, (f"{m}: ours {ours:.4f} vs baseline {base:.4f} vs LightGBM {lgb:.4f}{seen} "
                f"(allowed to trail LightGBM by {margin:.0%})")
