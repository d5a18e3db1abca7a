"""Causal relationship pruning and rows-aware epochs, measured: for each task three fits of
the space on the feature columns only (never the label) —

* ``rows-aware + pruning``: today's defaults (``training.config``: 60 epochs first, rows per epoch
  from the budget; ``training.relations``: a candidate pool explored and pruned by causal lift);
* ``rows-aware, fixed pairs``: the same plan with the floor's top pairs by mutual information
  throughout (``relationship_pool = max_pairs``);
* ``before (budget epochs)``: the rule this replaced — as many full passes as the budget affords
  (towards 36,000 updates), the fixed pairs, patience 100, every validation row each epoch;

and reports final validation loss, seconds per epoch, fit seconds, and a linear probe (5-fold
stratified logistic regression on the embeddings: accuracy for multi-class, ROC AUC for binary).

    .venv/bin/python bench/relations.py [--tasks penguins,flights10k,ratio] [--budget S]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embedding_probe import TASKS as PROBE_TASKS  # noqa: E402
from featrix_model import EmbeddingSpace  # noqa: E402
from featrix_model.training.config import TARGET_UPDATES, auto_config, step_seconds  # noqa: E402


def ratio_task():
    """c = a / b (with a little noise) beside three pure-noise columns: the pairs of the a, b, c
    triangle (each determines the third) are the relationships worth keeping; the probe predicts a > b."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 1000
    a, b = rng.lognormal(0, 0.7, n), rng.lognormal(0, 0.7, n)
    X = pd.DataFrame({"a": a, "b": b, "c": a / b * np.exp(rng.normal(0, 0.02, n)),
                      "n1": rng.normal(size=n), "n2": rng.normal(size=n), "n3": rng.uniform(size=n)})
    return X, (a > b).astype(int), "roc_auc"


TASKS = {**PROBE_TASKS, "ratio": ratio_task}


def before_settings(n_rows: int, n_cols: int, budget: float) -> dict:
    """The epochs the replaced rule gave (budget / fixed cost model, capped at 36,000 updates)."""
    cfg = auto_config(n_rows, n_cols, time_budget_s=budget)
    steps = max(1, math.ceil(n_rows * (1 - cfg.val_fraction) / cfg.batch_size))
    affordable = int(budget / step_seconds(cfg, n_cols, cfg.max_pairs))
    epochs = max(1, min(math.ceil(TARGET_UPDATES / steps), affordable // steps))
    out = {"epochs": epochs, "relationship_pool": cfg.max_pairs, "patience": 100, "validation_rows": 0,
           "rows_per_epoch": 0, "max_train_rows": max(cfg.batch_size, affordable * cfg.batch_size) if affordable < steps else 0}
    return out


def probe(emb, y, metric: str) -> float:
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(model, emb, y, cv=folds, scoring=metric).mean())


def run(name: str, budget: float) -> list[dict]:
    X, y, metric = TASKS[name]()
    rows = []
    for variant in ("rows-aware + pruning", "rows-aware, fixed pairs", "before (budget epochs)"):
        settings = {}
        if variant == "rows-aware, fixed pairs":
            settings = {"relationship_pool": auto_config(len(X), X.shape[1], time_budget_s=budget).max_pairs}
        elif variant.startswith("before"):
            settings = before_settings(len(X), X.shape[1], budget)
        from featrix_model.training.config import TrainingConfig

        base = auto_config(len(X), X.shape[1], time_budget_s=budget)
        cfg = TrainingConfig.from_dict({**base.to_dict(), **settings})
        started = time.perf_counter()
        es = EmbeddingSpace.fit(X, time_budget_s=budget, seed=0, progress=False, threads=1,
                                config=cfg if settings else None)
        seconds = time.perf_counter() - started
        timeline = es.timeline
        report = es.relationship_report()
        v = report.attrs.get("validation", {})
        rows.append({"task": name, "variant": variant, "epochs": len(timeline),
                     "final_validation_loss": round(float(timeline[-1]["validation_loss"]), 4),
                     "best_validation_loss": round(float(es.timeline_["metadata"]["best_validation_loss"] or 0), 4),
                     "s_per_epoch": round(seconds / max(1, len(timeline)), 2), "fit_s": round(seconds, 1),
                     "probe": round(probe(es.encode(X), y, metric), 4), "metric": metric,
                     "active_pairs": int(es.net.joint.relationships.active.sum()),
                     "candidates": int(es.net.joint.relationships.n_pairs),
                     "spearman_rho": None if v.get("spearman_rho") is None else round(v["spearman_rho"], 3),
                     "protected": [f"{r['left']}×{r['right']}" for r in report.to_dict("records") if r.get("protected")],
                     "top_by_importance": [f"{r['left']}×{r['right']}" for r in report.sort_values(
                         "importance", ascending=False).head(3).to_dict("records")] if report["importance"].notna().any() else []})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default="penguins,flights10k,ratio")
    ap.add_argument("--budget", type=float, default=150.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [r for t in args.tasks.split(",") for r in run(t, args.budget)]
    cols = ["task", "variant", "epochs", "final_validation_loss", "s_per_epoch", "fit_s", "probe", "metric",
            "active_pairs", "candidates", "spearman_rho", "protected", "top_by_importance"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    out = Path(__file__).parent / "results" / f"relations-{args.tasks.replace(',', '-')}.json"
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
