"""Peak memory of a space on a large table: training and encoding 1M rows x 30 columns with a
high-cardinality free-text column.

    .venv/bin/python bench/memory.py [--rows 1000000] [--distinct-text 50000] [--epochs 1] [--budget S]

The table: 20 numbers, 8 categories (3 to 5,000 levels), a timestamp and a free-text column with
``--distinct-text`` distinct sentences (each a few words drawn from a fixed vocabulary plus a serial,
so the sentence model sees every one). Memory does not grow with epochs (the data are tensorised
once; batches are gathered), so ``--epochs 1`` measures the same peak as a full budget in a fraction
of the time; pass ``--budget`` to train with the automatic plan instead. Reported per phase: the
process's peak resident set (``ru_maxrss``) after building the frame, after ``fit`` (codecs,
sentence embeddings, tensors, training, the training embeddings) and after ``encode`` of every row,
and the seconds of each. 1 torch thread. Results go to bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from featrix_model import EmbeddingSpace  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"
WORDS = ("late", "early", "fragile", "bulk", "express", "priority", "return", "gift", "damaged", "standard",
         "north", "south", "warehouse", "customer", "invoice", "pallet", "sealed", "open", "cold", "dry")


def peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def big_table(n: int, distinct_text: int, seed: int = 0) -> pd.DataFrame:
    g = np.random.default_rng(seed)
    df = pd.DataFrame({f"x{i}": g.normal(size=n) * (i + 1) for i in range(20)})
    for i, k in enumerate((3, 5, 12, 40, 100, 500, 1000, 5000)):
        df[f"c{i}"] = pd.Categorical.from_codes(g.integers(0, k, n), [f"c{i}_{v}" for v in range(k)]).astype(str)
    df["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(g.integers(0, 365 * 24 * 60, n), unit="min")
    sentences = np.array([" ".join(g.choice(WORDS, 4)) + f" no. {j}" for j in range(distinct_text)], dtype=object)
    df["note"] = sentences[g.integers(0, distinct_text, n)]
    return df


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--distinct-text", type=int, default=50_000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--budget", type=float, default=None, help="train with the automatic plan for this budget")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {"rows": args.rows, "columns": 30, "distinct_text": args.distinct_text, "start_mb": peak_mb()}
    t = time.perf_counter()
    df = big_table(args.rows, args.distinct_text)
    out.update(frame_s=round(time.perf_counter() - t, 1), frame_peak_mb=peak_mb(),
               frame_mb=round(df.memory_usage(deep=True).sum() / 2**20, 1))
    print(json.dumps(out), flush=True)
    t = time.perf_counter()
    es = EmbeddingSpace.fit(df, time_budget_s=args.budget, epochs=None if args.budget else args.epochs,
                            progress=False, threads=1, seed=0)
    out.update(fit_s=round(time.perf_counter() - t, 1), fit_peak_mb=peak_mb(), epochs=len(es.timeline))
    print(json.dumps(out), flush=True)
    t = time.perf_counter()
    emb = es.encode(df)
    out.update(encode_s=round(time.perf_counter() - t, 1), encode_peak_mb=peak_mb(),
               encode_rows_per_s=round(len(df) / (time.perf_counter() - t)), embedding_shape=list(emb.shape))
    print(json.dumps(out, indent=1))
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
