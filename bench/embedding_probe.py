"""Embedding-space quality and speed: a linear probe on our embeddings vs a linear model on raw features.

    .venv/bin/python -m pip install -r bench/requirements.lock   # once, for the penguins task (palmerpenguins)
    .venv/bin/python bench/embedding_probe.py [--tasks penguins,breast_cancer,flights10k,mixed10k] [--budget S]

For each task the space is fitted once on the feature columns only (never the label: it is
self-supervised), then a logistic regression is cross-validated (5-fold stratified, shuffle,
seed 0) on (a) our embeddings and (b) one-hot categoricals + standardised numerics, same folds.
Reports fit seconds, encode rows/s and the metric of each (accuracy for multi-class, ROC AUC for
binary). 1 torch thread (the setting measured steadiest on the 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tasks  # noqa: E402
from featrix_model import EmbeddingSpace  # noqa: E402


def _with(metric, load):
    return lambda: (*load(), metric)


TASKS = {"penguins": _with("accuracy", tasks.penguins), "breast_cancer": _with("roc_auc", tasks.breast_cancer),
         "flights10k": _with("roc_auc", lambda: (lambda X, y: (X, y.astype(int)))(*tasks.flights_delay(10_000)())),
         "mixed10k": _with("roc_auc", lambda: _mixed(10_000))}


def _mixed(n: int):
    """bench/speed.py's 10K x 20 mixed table (numbers, categories, a timestamp, a flag, a short text)."""
    from speed import mixed_table

    df = mixed_table(n)
    return df.drop(columns=["label"]), (df["label"] == "yes").astype(int)


def raw_linear(X: pd.DataFrame):
    num = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    cat = [c for c in X.columns if c not in num]
    ct = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), num),
        (make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                       OneHotEncoder(handle_unknown="ignore", min_frequency=5)), cat))
    return make_pipeline(ct, LogisticRegression(max_iter=3000))


def run(name: str, budget: float | None) -> dict:
    X, y, metric = TASKS[name]()
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    t = time.perf_counter()
    es = EmbeddingSpace.fit(X, time_budget_s=budget, seed=0, progress=False)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    emb = es.encode(X)
    enc_rate = len(X) / (time.perf_counter() - t)
    ours = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)), emb, y, cv=folds, scoring=metric)
    raw = cross_val_score(raw_linear(X), X, y, cv=folds, scoring=metric)
    return {"task": name, "rows": len(X), "columns": X.shape[1], "metric": metric,
            "probe_on_embeddings": round(float(ours.mean()), 4), "linear_on_raw": round(float(raw.mean()), 4),
            "fit_s": round(fit_s, 1), "epochs": len(es.timeline), "encode_rows_per_s": round(enc_rate),
            "d_model": es.d_model}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--budget", type=float, default=None, help="training seconds per space (default: automatic)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="embedding_probe.json", help="file name under bench/results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for t in args.tasks.split(","):
        rows.append(run(t, args.budget))
        print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
