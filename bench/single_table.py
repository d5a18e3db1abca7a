"""Predictors on embedding spaces vs LightGBM, XGBoost, CatBoost and linear baselines (tasks in bench/README.md).

    .venv/bin/python -m pip install -r bench/requirements.lock   # once: XGBoost, CatBoost, palmerpenguins
    .venv/bin/python bench/single_table.py [--tasks penguins,breast_cancer,wine,diabetes,flights40k] [--budget S]

5-fold CV (StratifiedKFold for classification, KFold for regression; shuffle, seed 0), library
defaults, 1 thread. The embedding space is fitted once per task on the feature columns only — it
never sees the label, so sharing it across folds leaks no target information (the "foundation
model" workflow) — then one predictor per fold is trained on the fold's training rows
and scored on its held-out rows. Prints a markdown table with the metric and fit seconds per fold.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tasks  # noqa: E402
from featrix_model import EmbeddingSpace, Predictor, intervals  # noqa: E402


def _with(kind, load):
    return lambda: (*load(), kind)


TASKS = {"penguins": _with("multiclass", tasks.penguins), "breast_cancer": _with("binary", tasks.breast_cancer),
         "wine": _with("multiclass", tasks.wine), "diabetes": _with("regression", tasks.diabetes),
         "flights40k": _with("binary", tasks.flights_delay(40_000)), "tweets": _with("binary", tasks.tweets)}
TEXT = {"tweets": "text"}  # the free-text column of a text-heavy task: TF-IDF baselines read it


def score(kind, y_true, pred, proba_pos=None) -> dict:
    if kind == "regression":
        return {"rmse": float(np.sqrt(mean_squared_error(y_true, pred))), "r2": float(r2_score(y_true, pred))}
    out = {"accuracy": float(accuracy_score(y_true, pred)), "macro_f1": float(f1_score(y_true, pred, average="macro"))}
    if kind == "binary" and proba_pos is not None:
        out["auc"] = float(roc_auc_score(y_true, proba_pos))
    return out


def numeric_times(x):
    """Timestamps as numbers (their epoch count), as a user would hand them to any of the baselines."""
    return x.assign(**{c: x[c].astype("int64").astype(float).where(x[c].notna()) for c in x.columns
                       if pd.api.types.is_datetime64_any_dtype(x[c])})  # NaT stays missing


def tree_frame(X_tr, X_te):
    cat = [c for c in X_tr.columns if not pd.api.types.is_numeric_dtype(X_tr[c])]
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    a, b = X_tr.copy(), X_te.copy()
    if cat:
        a[cat] = enc.fit_transform(a[cat].astype(str))
        b[cat] = enc.transform(b[cat].astype(str))
    return a.astype(float), b.astype(float)


def catboost_frames(X_tr, X_te, cat):
    """CatBoost reads categorical columns natively, as strings (missing: its own category)."""
    a, b = X_tr.copy(), X_te.copy()
    for c in cat:
        a[c], b[c] = (v[c].astype(object).where(v[c].notna(), "missing").map(str) for v in (a, b))
    return a, b


def text_baselines(text, X_tr, y_tr, X_te) -> dict:
    """TF-IDF + logistic regression on the text alone, and LightGBM on the other columns plus that
    model's score (cross-fitted on the training rows, 5 folds) — what a user without embeddings runs."""
    import lightgbm as lgb
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import cross_val_predict

    out, classes = {}, np.unique(y_tr)
    t = time.perf_counter()
    lr = make_pipeline(TfidfVectorizer(sublinear_tf=True), LogisticRegression(max_iter=2000))
    ya = np.searchsorted(classes, y_tr)
    lr.fit(X_tr[text], ya)
    pp = lr.predict_proba(X_te[text])[:, 1]
    out["tfidf_lr"] = (classes[(pp > 0.5).astype(int)], pp, time.perf_counter() - t)
    t = time.perf_counter()
    oof = cross_val_predict(make_pipeline(TfidfVectorizer(sublinear_tf=True), LogisticRegression(max_iter=2000)),
                            X_tr[text], ya, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                            method="predict_proba")[:, 1]
    a, b = tree_frame(numeric_times(X_tr.drop(columns=text)), numeric_times(X_te.drop(columns=text)))
    m = lgb.LGBMClassifier(n_jobs=1, verbose=-1, random_state=0).fit(a.assign(text_score=oof), ya)
    pp2 = m.predict_proba(b.assign(text_score=pp))[:, 1]
    out["tfidf+lightgbm"] = (classes[(pp2 > 0.5).astype(int)], pp2, time.perf_counter() - t + out["tfidf_lr"][2])
    return out


def baselines(kind, X_tr, y_tr, X_te):
    import catboost as cb
    import lightgbm as lgb
    import xgboost as xgb

    out = {}
    X_tr, X_te = numeric_times(X_tr), numeric_times(X_te)
    a, b = tree_frame(X_tr, X_te)
    num = [c for c in X_tr.columns if pd.api.types.is_numeric_dtype(X_tr[c])]
    cat = [c for c in X_tr.columns if c not in num]
    ct = make_column_transformer((make_pipeline(SimpleImputer(), StandardScaler()), num),
                                 (make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                                OneHotEncoder(handle_unknown="ignore")), cat))
    if kind == "regression":
        models = {"lightgbm": lgb.LGBMRegressor(n_jobs=1, verbose=-1, random_state=0),
                  "xgboost": xgb.XGBRegressor(n_jobs=1, random_state=0),
                  "catboost": cb.CatBoostRegressor(thread_count=1, random_seed=0, verbose=0, cat_features=cat,
                                                    allow_writing_files=False),
                  "linear": make_pipeline(ct, LinearRegression())}
    else:
        models = {"lightgbm": lgb.LGBMClassifier(n_jobs=1, verbose=-1, random_state=0),
                  "xgboost": xgb.XGBClassifier(n_jobs=1, random_state=0),
                  "catboost": cb.CatBoostClassifier(thread_count=1, random_seed=0, verbose=0, cat_features=cat,
                                                      allow_writing_files=False),
                  "linear": make_pipeline(ct, LogisticRegression(max_iter=3000))}
    classes = np.unique(y_tr)
    for name, m in models.items():
        t = time.perf_counter()
        Xa, Xb = ((X_tr, X_te) if name == "linear" else catboost_frames(X_tr, X_te, cat) if name == "catboost"
                  else (a, b))
        ya = y_tr if kind == "regression" else np.searchsorted(classes, y_tr)
        m.fit(Xa, ya)
        pred = m.predict(Xb)
        pp = None
        if kind != "regression":
            pred = classes[np.asarray(pred).astype(int).reshape(-1)]
            if kind == "binary":
                pp = m.predict_proba(Xb)[:, 1]
        out[name] = (pred, pp, time.perf_counter() - t)
    return out


def run(name, budget):
    X, y, kind = TASKS[name]()
    y = np.asarray(y)
    t = time.perf_counter()
    es = EmbeddingSpace.fit(X, time_budget_s=budget, seed=0, progress=False)
    es_s = time.perf_counter() - t
    folds = (KFold(5, shuffle=True, random_state=0) if kind == "regression"
             else StratifiedKFold(5, shuffle=True, random_state=0))
    rows = {m: [] for m in ("ours", "lightgbm", "xgboost", "catboost", "linear")
            + (("tfidf_lr", "tfidf+lightgbm") if name in TEXT else ())}
    times = {m: [] for m in rows}
    for tr, te in folds.split(X, y):
        Xtr, Xte = X.iloc[tr].reset_index(drop=True), X.iloc[te].reset_index(drop=True)
        t = time.perf_counter()
        p = Predictor.fit(es, Xtr.assign(__y=y[tr]), target="__y", kind="auto" if kind != "binary" else "classification",
                          seed=0)
        res = p.predict_frame(Xte, explain=False)
        times["ours"].append(time.perf_counter() - t)
        if kind == "regression":
            rows["ours"].append({**score(kind, y[te], res["prediction"].to_numpy(float)),
                                 **intervals.coverages(y[te], res)})  # the 90 % / 95 % intervals' coverage
        else:
            pred = res["prediction"].to_numpy()
            pred = pred.astype(y.dtype) if y.dtype != object else pred
            rows["ours"].append(score(kind, y[te], pred, res["probability"].to_numpy() if kind == "binary" else None))
        extra = text_baselines(TEXT[name], Xtr, y[tr], Xte) if name in TEXT else {}
        for m, (pred, pp, s) in {**baselines(kind, Xtr, y[tr], Xte), **extra}.items():
            rows[m].append(score(kind, y[te], pred, pp))
            times[m].append(s)
    out = []
    for m in rows:
        mean = pd.DataFrame(rows[m]).mean().round(4).to_dict()
        out.append({"task": name, "kind": kind, "model": m, **mean, "fit_s_per_fold": round(float(np.mean(times[m])), 2),
                    "space_fit_s": round(es_s, 1) if m == "ours" else None})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--budget", type=float, default=None, help="embedding-space training seconds (default: automatic)")
    ap.add_argument("--out", default="single_table.json", help="file name under bench/results/")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = []
    for t in args.tasks.split(","):
        results += run(t, args.budget)
        print(pd.DataFrame([r for r in results if r["task"] == t]).to_markdown(index=False), flush=True)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / args.out).write_text(json.dumps(results, indent=1))
    print(pd.DataFrame(results).to_markdown(index=False))


if __name__ == "__main__":
    main()
