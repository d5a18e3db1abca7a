"""One embedding space per table, trained from the filtered table (spec §1.3 step 1, §2.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from featrix_model import EmbeddingSpace
from featrix_pipeline.relational import model_frame
from featrix_pipeline.spec import DatasetSpec


def feature_frame(spec: DatasetSpec, table: str, filtered: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The columns an embedding space learns from, and why any filtered column is left out.

    A single-column primary key identifies rows and is unique by definition, so it carries no
    shared structure: it is left out. Parts of a composite key (origin, time_hour) are ordinary
    attributes and stay. Columns computed away by targets' ``exclude_features`` stay too: the space
    is task-agnostic; predictors decide what they may use.
    """
    pk = spec.tables[table].primary_key
    left_out = {}
    if len(pk) == 1 and pk[0] in filtered.columns:
        left_out[pk[0]] = f"'{pk[0]}' is the single-column primary key of {table}: a row identifier, not a feature."
    return filtered.drop(columns=list(left_out)), left_out


def train_space(spec: DatasetSpec, table: str, filtered: pd.DataFrame, out_dir: Path, *,
                time_budget_s: float | None = None, seed: int = 0, threads: int = 1,
                rows: dict[str, pd.DataFrame] | None = None) -> tuple[EmbeddingSpace, dict]:
    """Fit, save (config.json + model.safetensors + JSON + figures) and summarise a table's space.
    ``rows``: filtered rows of the table's lookup tables, joined in first (``lookup: true``)."""
    features, left_out = feature_frame(spec, table, filtered)
    features = model_frame(spec, table, features, rows or {})
    es = EmbeddingSpace.fit(features, time_budget_s=time_budget_s, seed=seed, progress=False, threads=threads,
                            output_dir=out_dir)
    es.save(out_dir)
    last = es.timeline[-1] if es.timeline else {}
    mi = es.mutual_information()
    pairs = [(a, b, float(mi.loc[a, b])) for a in mi.index for b in mi.columns if a != b]
    pairs.sort(key=lambda t: -t[2])
    summary = {
        "path": str(out_dir), "table": table, "rows": int(len(features)), "d_model": es.d_model,
        "columns": es.plan.columns, "left_out": left_out,
        "excluded": {c: i["reason"] for c, i in es.plan.info.items() if i["excluded"]},
        "config": {k: v for k, v in es.config.to_dict().items() if k != "reasons"},
        "reasons": es.config.reasons, "epochs_run": len(es.timeline),
        "final": {k: last.get(k) for k in ("train_loss", "validation_loss", "joint_loss", "spread_loss",
                                          "marginal_loss", "reconstruction_loss")},
        "collapse": last.get("collapse", {}), "failures": last.get("failures_detected", []),
        "top_mi_pairs": [{"from": a, "about": b, "bits": round(v, 3)} for a, b, v in pairs[:10]],
        "fit_seconds": es.timeline_["metadata"].get("fit_seconds"),
        "figures": {k: str(v) for k, v in {"timeline": out_dir / "training_timeline.png",
                                           "mutual_information": out_dir / "mutual_information.png",
                                           "sphere": out_dir / "sphere.html"}.items() if v.exists()},
    }
    return es, summary


def row_embeddings(spec: DatasetSpec, table: str, filtered: pd.DataFrame, space_path: str | Path,
                   rows: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Primary key + ``emb_0..emb_{d-1}`` + short ``sx, sy, sz`` for every row (no row dropped)."""
    es = EmbeddingSpace.load(space_path)
    if es.train_embeddings_ is not None and len(es.train_embeddings_) == len(filtered):
        emb = es.train_embeddings_  # the space was fitted on exactly these rows, in this order
    else:
        emb = es.encode(model_frame(spec, table, filtered, rows or {}))
    short = emb[:, :3] / np.linalg.norm(emb[:, :3], axis=1, keepdims=True).clip(1e-8)  # spec §15
    pk = [c for c in spec.tables[table].primary_key if c in filtered.columns]
    out = filtered[pk].reset_index(drop=True).copy()
    out = pd.concat([out, pd.DataFrame(emb, columns=[f"emb_{i}" for i in range(emb.shape[1])]),
                     pd.DataFrame(short, columns=["sx", "sy", "sz"])], axis=1)
    assert len(out) == len(filtered) and np.isfinite(emb).all()
    return out
