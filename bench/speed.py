"""Where users wait, measured beside LightGBM on the same data (so the ratio holds when this
machine's speed drifts): a 10K x 20 mixed table (10 numbers, 6 categories, a timestamp, a flag, a
short text, and a binary target that depends on several of them).

    .venv/bin/python bench/speed.py [--rows 10000] [--budget S] [--epochs N] [--repeats 200]

Reports, in one run: the space's fit seconds with the defaults (or ``--epochs`` for a quick latency
check), the predictor's fit seconds, batch ``encode`` rows/s, single-row ``predict`` latency (with
guardrails and importance, and without importance) p50/p99 over ``--repeats`` held-out rows, the
predictor's held-out AUC, and LightGBM's fit and single-row predict time and AUC on the same split.
1 torch thread. Results go to bench/results/speed.json.
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
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from featrix_model import EmbeddingSpace, Predictor  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "speed.json"
WORDS = ("late", "early", "fragile", "bulk", "express", "priority", "return", "gift", "damaged", "standard")


def mixed_table(n: int, seed: int = 0) -> pd.DataFrame:
    """10 numbers, 6 categories, a timestamp, a flag, a short text and the target ``label``."""
    g = np.random.default_rng(seed)
    df = pd.DataFrame({f"x{i}": g.normal(size=n) * (i + 1) for i in range(10)})
    for i, k in enumerate((3, 5, 8, 12, 20, 40)):
        df[f"c{i}"] = pd.Series(g.integers(0, k, n)).map(lambda v, i=i: f"c{i}_{v}")
    df["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(g.integers(0, 365 * 24, n), unit="h")
    df["flag"] = g.random(n) < 0.3
    df["note"] = [" ".join(g.choice(WORDS, 3)) for _ in range(n)]
    logit = (df["x0"] + 0.5 * df["x1"] / 2 - (df["c0"] == "c0_1") * 1.5 + df["flag"] * 1.0
             + df["note"].str.contains("express") * 1.0 + np.sin(df["when"].dt.hour / 24 * 2 * np.pi))
    df["label"] = (logit + g.normal(size=n) * 0.7 > 0.3).map({True: "yes", False: "no"})
    return df


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def single_rows(fn, rows: list[dict]) -> dict:
    fn(rows[0])  # warm
    times = []
    for r in rows:
        t = time.perf_counter()
        fn(r)
        times.append(time.perf_counter() - t)
    return percentiles(times)


def lightgbm(train: pd.DataFrame, test: pd.DataFrame, repeats: int) -> dict:
    import lightgbm as lgb

    def frame(d: pd.DataFrame) -> pd.DataFrame:
        out = d.drop(columns=["label", "note"]).copy()
        out["when"] = out["when"].astype("int64") // 10**9
        for c in out.columns:
            if out[c].dtype == object or str(out[c].dtype).startswith("str"):
                out[c] = pd.Categorical(out[c], categories=sorted(train[c].unique()))
        return out
    X, Xt = frame(train), frame(test)
    t = time.perf_counter()
    model = lgb.LGBMClassifier(verbose=-1, random_state=0, n_jobs=1).fit(X, train["label"] == "yes")
    fit_s = time.perf_counter() - t
    auc = roc_auc_score(test["label"] == "yes", model.predict_proba(Xt)[:, 1])
    latency = single_rows(lambda r: model.predict_proba(frame(pd.DataFrame([r])))[:, 1],
                          test.head(repeats).to_dict("records"))
    return {"fit_s": round(fit_s, 2), "auc": round(float(auc), 4), "predict_one_row": latency}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--budget", type=float, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="the space's and the predictor's seed")
    args = ap.parse_args()
    torch.set_num_threads(1)
    df = mixed_table(args.rows)
    cut = int(len(df) * 0.8)
    train, test = df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)
    out = {"rows": args.rows, "seed": args.seed, "columns": df.shape[1], "lightgbm": lightgbm(train, test, args.repeats)}
    t = time.perf_counter()
    space = EmbeddingSpace.fit(train.drop(columns=["label"]), time_budget_s=args.budget, epochs=args.epochs,
                               progress=False, threads=1, seed=args.seed)
    out["space_fit_s"] = round(time.perf_counter() - t, 1)
    out["space_epochs"] = len(space.timeline)
    t = time.perf_counter()
    pred = Predictor.fit(space, train, "label", threads=1, seed=args.seed)
    out["predictor_fit_s"] = round(time.perf_counter() - t, 1)
    scores = pred.predict_frame(test.drop(columns=["label"]), explain=False)
    prob = scores["probabilities"].map(lambda p: p["yes"]) if "probabilities" in scores else None
    out["auc"] = None if prob is None else round(float(roc_auc_score(test["label"] == "yes", prob)), 4)
    t = time.perf_counter()
    space.encode(test.drop(columns=["label"]))
    out["encode_rows_per_s"] = round(len(test) / (time.perf_counter() - t))
    rows = test.drop(columns=["label"]).head(args.repeats).to_dict("records")
    out["predict_one_row"] = single_rows(lambda r: pred.predict(r), rows)
    out["predict_one_row_no_importance"] = single_rows(lambda r: pred.predict(r, explain=False), rows)
    print(json.dumps(out, indent=1))
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
