"""GPU check of the embedding-space training code (run on a lent GPU machine; not part of CI).

    python3 bench/gpu_check.py [--out DIR]

Numeric-only tables, so the sentence model (not installed there) is never needed:
breast_cancer (569 × 30) and a planted 3-group table (20,000 × 20). For each: fit on CUDA with
the GPU defaults (d_model 256, 3 layers, 8 heads, 8 relationship tokens per pair) for a fixed
number of epochs, report seconds and steps/s, a 5-fold linear probe, whether two fits with the
same seed give identical bytes on the GPU, and that a saved space reloads on the CPU and encodes
the same rows to within float tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from featrix_model import EmbeddingSpace  # noqa: E402


def planted(n: int, cols: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, n)
    data = {f"s{i}": (g * (i % 4 - 1.5)) + rng.normal(0, 1.0, n) for i in range(cols // 2)}
    data.update({f"n{i}": rng.normal(size=n) for i in range(cols - cols // 2)})
    return pd.DataFrame(data), g


DEVICE = "cuda"


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def check(name: str, X: pd.DataFrame, y: np.ndarray, epochs: int) -> dict:
    sync()
    t = time.perf_counter()
    es = EmbeddingSpace.fit(X, seed=0, progress=False, device=DEVICE, epochs=epochs, keep_training_rows=False)
    sync()
    fit_s = time.perf_counter() - t
    steps = es.timeline_["metadata"]["steps"]
    emb = es.encode(X)
    probe = float(cross_val_score(LogisticRegression(max_iter=3000), emb, y, cv=5).mean())
    again = EmbeddingSpace.fit(X, seed=0, progress=False, device=DEVICE, epochs=epochs, keep_training_rows=False)
    same = bool(np.array_equal(again.encode(X), emb))
    with tempfile.TemporaryDirectory() as tmp:
        es.save(tmp, figures=False)
        cpu = EmbeddingSpace.load(tmp)
        cpu_emb = cpu.encode(X.head(500))
    return {"task": name, "rows": len(X), "cols": X.shape[1], "device": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu",
            "d_model": es.d_model, "layers": es.config.n_layers, "batch": es.config.batch_size,
            "seq_len": es.net.joint.seq_len, "epochs": len(es.timeline), "steps": steps, "fit_s": round(fit_s, 1),
            "steps_per_s": round(steps / fit_s, 1), "probe_acc": round(probe, 4),
            "final_val_loss": es.timeline[-1]["validation_loss"], "same_seed_identical_on_gpu": same,
            "cpu_reload_max_abs_diff": float(np.abs(cpu_emb - emb[:500]).max()),
            "peak_gpu_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if DEVICE == "cuda" else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--scale", type=float, default=1.0, help="shrink epochs/rows for a quick CPU smoke run")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    assert DEVICE == "cpu" or torch.cuda.is_available(), "no CUDA device"
    bc = load_breast_cancer(as_frame=True)
    results = [check("breast_cancer", bc.data, bc.target.to_numpy(), epochs=max(1, int(20 * args.scale)))]
    print(json.dumps(results[-1]), flush=True)
    X, g = planted(int(20_000 * args.scale))
    results.append(check("planted_20k", X, g, epochs=max(1, int(3 * args.scale))))
    print(json.dumps(results[-1]), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "gpu_check.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
