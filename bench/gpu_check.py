"""GPU check of the embedding-space training code (run on a lent GPU machine; not part of CI).

    python3 bench/gpu_check.py [--out DIR]

Numeric-only tables, so the sentence model (not installed there) is never needed:
breast_cancer (569 × 30) and a planted 3-group table (20,000 × 20). For each: fit on CUDA with
the GPU defaults (d_model by the data's size: 128 for these two tables; 3 layers, 8 heads, 8 relationship
tokens per pair) for a fixed
number of epochs, report seconds and steps/s, a 5-fold linear probe, whether two fits with the
same seed give identical bytes on the GPU (the embeddings, and the saved ``model.safetensors``
files), under which CUDA numerics (``deterministic``, ``allow_tf32``: the recorded training
settings) and how many "no deterministic implementation" warnings torch gave, and that a saved
space reloads on the CPU and encodes the same rows to within float tolerance.

    python3 bench/gpu_check.py --fast     # deterministic=False, allow_tf32=True: the speed it costs

Importing this file needs no GPU; ``--device cpu --scale 0.05`` is a quick smoke run on a CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
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
NUMERICS = {"deterministic": True, "allow_tf32": False}


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def fit(X: pd.DataFrame, epochs: int) -> tuple[EmbeddingSpace, int]:
    """A fit with the chosen CUDA numerics, and how many non-determinism warnings torch gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        es = EmbeddingSpace.fit(X, seed=0, progress=False, device=DEVICE, epochs=epochs, keep_training_rows=False,
                                **NUMERICS)
    return es, sum("deterministic" in str(w.message) for w in caught)


def check(name: str, X: pd.DataFrame, y: np.ndarray, epochs: int) -> dict:
    sync()
    t = time.perf_counter()
    es, warned = fit(X, epochs)
    sync()
    fit_s = time.perf_counter() - t
    steps = es.timeline_["metadata"]["steps"]
    emb = es.encode(X)
    probe = float(cross_val_score(LogisticRegression(max_iter=3000), emb, y, cv=5).mean())
    again, warned_again = fit(X, epochs)
    same = bool(np.array_equal(again.encode(X), emb))
    with tempfile.TemporaryDirectory() as tmp:
        es.save(Path(tmp) / "a", figures=False)
        again.save(Path(tmp) / "b", figures=False)
        same_weights = (Path(tmp) / "a" / "model.safetensors").read_bytes() == (Path(tmp) / "b" / "model.safetensors").read_bytes()
        cpu = EmbeddingSpace.load(Path(tmp) / "a")
        cpu_emb = cpu.encode(X.head(500))
    return {"task": name, "rows": len(X), "cols": X.shape[1], "device": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu",
            "deterministic": es.config.deterministic, "allow_tf32": es.config.allow_tf32,
            "d_model": es.d_model, "layers": es.config.n_layers, "batch": es.config.batch_size,
            "seq_len": es.net.joint.seq_len, "epochs": len(es.timeline), "steps": steps, "fit_s": round(fit_s, 1),
            "steps_per_s": round(steps / fit_s, 1), "probe_acc": round(probe, 4),
            "final_val_loss": es.timeline[-1]["validation_loss"], "same_seed_identical_on_gpu": same,
            "same_seed_model_safetensors_identical": same_weights,
            "nondeterminism_warnings": warned + warned_again,
            "cpu_reload_max_abs_diff": float(np.abs(cpu_emb - emb[:500]).max()),
            "peak_gpu_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if DEVICE == "cuda" else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--scale", type=float, default=1.0, help="shrink epochs/rows for a quick CPU smoke run")
    ap.add_argument("--fast", action="store_true", help="deterministic=False, allow_tf32=True (opt-in speed)")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    if args.fast:
        NUMERICS.update(deterministic=False, allow_tf32=True)
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
