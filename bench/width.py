"""Width and depth of the embedding space against the table's size: a linear probe per variant.

    .venv/bin/python bench/width.py [--tasks digits,breast_cancer,penguins,flights10k] [--variants auto,64x2,128x2,64x3]
        [--budget 150]

Each variant fits the space on the feature columns only (never the label) with the same budget,
seed and rows-aware plan, repriced for its width (``d_model`` x ``n_layers``; ``auto`` is today's
automatic choice); the probe is a 5-fold logistic regression on the embeddings (accuracy for
multi-class, ROC AUC for binary), the same folds for every variant. 1 torch thread. Results are merged
into bench/results/width.json (per task and variant).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embedding_probe import TASKS as PROBE_TASKS  # noqa: E402
from relations import probe  # noqa: E402

from featrix_model import EmbeddingSpace  # noqa: E402
from featrix_model.training.config import auto_config  # noqa: E402


def digits_task():
    """8 x 8 images as 64 integer columns (a wide table; the always-blank pixels are filtered out)."""
    d = load_digits(as_frame=True)
    return d.data, d.target, "accuracy"


TASKS = {**PROBE_TASKS, "digits": digits_task}
RESULTS = Path(__file__).resolve().parent / "results" / "width.json"


def run(name: str, variant: str, budget: float) -> dict:
    X, y, metric = TASKS[name]()
    sizes = {} if variant == "auto" else dict(zip(("d_model", "n_layers"), map(int, variant.split("x"))))
    cfg = auto_config(len(X), X.shape[1], time_budget_s=budget, **sizes) if sizes else None
    started = time.perf_counter()
    es = EmbeddingSpace.fit(X, time_budget_s=budget, seed=0, progress=False, threads=1, config=cfg)
    seconds = time.perf_counter() - started
    c = es.config
    return {"task": name, "variant": variant, "rows": len(X), "columns": X.shape[1], "d_model": c.d_model,
            "n_layers": c.n_layers, "epochs": len(es.timeline), "rows_per_epoch": c.rows_per_epoch or None,
            "fit_s": round(seconds, 1), "probe": round(probe(es.encode(X), y, metric), 4), "metric": metric,
            "best_validation_loss": round(float(es.timeline_["metadata"]["best_validation_loss"] or 0), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default="digits,breast_cancer,penguins,flights10k")
    ap.add_argument("--variants", default="64x2,128x2,64x3")
    ap.add_argument("--budget", type=float, default=150.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    rows = []
    for name in args.tasks.split(","):
        for variant in args.variants.split(","):
            rows.append(run(name, variant, args.budget))
            print(json.dumps(rows[-1]), flush=True)
    done = {(r["task"], r["variant"]) for r in rows}
    RESULTS.write_text(json.dumps([r for r in old if (r["task"], r["variant"]) not in done] + rows, indent=1))
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
