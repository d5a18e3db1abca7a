"""Data-parallel training on this machine's cores: the same space fitted by one process with one
torch thread, one process with two threads, and two processes (``fit_data_parallel``, gloo) with one
thread each - same table, epochs and seed - with each one's wall seconds and linear-probe quality
(5-fold logistic regression on the embeddings, as ``embedding_probe.py``) side by side.

    .venv/bin/python bench/distributed_speed.py [--rows 10000] [--epochs 20]

Writes ``results/distributed_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from embedding_probe import _mixed  # noqa: E402
from featrix_model import EmbeddingSpace  # noqa: E402
from featrix_model.distributed import fit_data_parallel  # noqa: E402


def probe(es, X, y) -> float:
    torch.set_num_threads(1)
    emb = es.encode(X)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    return round(float(cross_val_score(model, emb, y, cv=folds, scoring="roc_auc").mean()), 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    X, y = _mixed(args.rows)
    kw = {"epochs": args.epochs, "seed": 0, "progress": False}
    runs = []
    for label, fit in (("1 process, 1 thread", lambda: EmbeddingSpace.fit(X, threads=1, **kw)),
                       ("1 process, 2 threads", lambda: EmbeddingSpace.fit(X, threads=2, **kw)),
                       ("2 processes (gloo), 1 thread each", lambda: fit_data_parallel(X, world_size=2, threads=1, **kw))):
        t = time.perf_counter()
        es = fit()
        seconds = time.perf_counter() - t
        runs.append({"run": label, "fit_s": round(seconds, 1), "epochs": len(es.timeline),
                     "probe_auc": probe(es, X, y)})
        print(json.dumps(runs[-1]), flush=True)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "distributed_speed.json").write_text(json.dumps({"rows": args.rows, "columns": X.shape[1], "runs": runs},
                                                           indent=1))


if __name__ == "__main__":
    main()
