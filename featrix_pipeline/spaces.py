"""One embedding space per table, trained from the filtered table with its lookups joined in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import torch

from featrix_model import EmbeddingSpace, io
from featrix_model.space import use_threads
from featrix_pipeline import accounting
from featrix_pipeline.columns import analysis_of
from featrix_pipeline.evaluation import SPLIT_SCHEME, held_out_split
from featrix_pipeline.fingerprint import digest, frame_fingerprint, model_code_version
from featrix_pipeline.reuse import ArtifactStore, now_utc, reused
from featrix_pipeline.scoring import HASH_COLUMN, row_hashes
from featrix_pipeline.settings import FitSettings
from featrix_pipeline.topology import TablePlan

TRAINING_HASHES = "training_hashes.parquet"  # content hashes of the rows a version knew (for drift and reuse)
EVALUATION_EMBEDDINGS = "evaluation_embeddings.safetensors"  # the held-out rows' embeddings, in TRAINING_HASHES order
FIGURES = {"timeline": "training_timeline.png", "mutual_information": "mutual_information.png",
           "sphere": "sphere.html"}


def feature_frame(plan: TablePlan, filtered: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The columns an embedding space learns from, and why any filtered column is left out.

    The table's row id (``TablePlan.row_id``) is left out. Columns computed away by targets' ``exclude_features`` stay: the space
    is task-agnostic (predictors hide what they may not use), and it never trains on the rows its
    predictors are measured on (``evaluation_rows``).
    """
    left_out = {}
    if plan.row_id in filtered.columns:
        left_out[plan.row_id] = (f"'{plan.row_id}' is the single-column primary key of {plan.name}: a row identifier, "
                                 "not a feature.")
    return filtered.drop(columns=list(left_out)), left_out


def evaluation_rows(plan: TablePlan, frame: pd.DataFrame, seed: int) -> np.ndarray:
    """True for the rows of ``frame`` (the table's rows, key columns included) that the table's
    predictors hold out to measure themselves (``held_out_split``: by key and seed, the same rows in
    every run); none when the table has no target. The table's spaces never train on these rows, so
    a held-out metric comes from a space that saw neither the row's target nor the columns computed
    from it (the row is still embedded)."""
    if not plan.targets:
        return np.zeros(len(frame), dtype=bool)
    return held_out_split(frame[list(plan.spec.primary_key)], seed)


def space_accounting(es: EmbeddingSpace, rows_in: int, what: str, evaluation: int = 0) -> dict:
    """Where a space's ``rows_in`` rows went: held out for the predictors' evaluation (``evaluation``
    rows, never shown to the space), then in its training loop trained on, held out for its
    validation, or sampled out of the training batches (every row gets an embedding)."""
    meta = es.timeline_["metadata"]
    train, validation = int(meta["n_train_rows"]), int(meta["n_validation_rows"])
    # counted where each happened (a space saved before the count: the rows neither trained nor validated)
    sampled = int(meta.get("n_rows_sampled_out", rows_in - evaluation - train - validation))
    return accounting.account(rows_in, {accounting.USED_FOR_TRAINING: train,
                                        accounting.HELD_OUT_FOR_VALIDATION: validation,
                                        accounting.HELD_OUT_FOR_EVALUATION: evaluation},
                              {accounting.SAMPLED_OUT_SPACE: sampled}, what=what)


def space_summary(es: EmbeddingSpace, table: str, rows: int, out_dir: Path, evaluation: int = 0) -> dict:
    """What a trained space's asset reports: size, where its rows went, columns, settings with
    reasons, final losses, collapse metrics, the top mutual-information pairs and its figures."""
    last = es.timeline[-1] if es.timeline else {}
    mi = es.mutual_information()
    pairs = sorted(((a, b, float(mi.loc[a, b])) for a in mi.index for b in mi.columns if a != b), key=lambda t: -t[2])
    return {
        "path": str(out_dir), "table": table, "rows": int(rows), "d_model": es.d_model, "columns": es.plan.columns,
        "row_accounting": space_accounting(es, int(rows), f"space of '{table}'", evaluation),
        "excluded": {c: i["reason"] for c, i in es.plan.info.items() if i["excluded"]},
        "config": {k: v for k, v in es.config.to_dict().items() if k != "reasons"},
        "reasons": es.config.reasons, "epochs_run": len(es.timeline),
        "final": {k: last.get(k) for k in ("train_loss", "validation_loss", "joint_loss", "spread_loss",
                                          "marginal_loss", "reconstruction_loss")},
        "collapse": last.get("collapse", {}), "failures": last.get("failures_detected", []),
        "top_mi_pairs": [{"from": a, "about": b, "bits": round(v, 3)} for a, b, v in pairs[:10]],
        "fit_seconds": es.timeline_["metadata"].get("fit_seconds"),
        "split_kl": es.timeline_["metadata"].get("split_kl", {}),
        "relationships": relationship_summary(es),
        "figures": {k: str(out_dir / f) for k, f in FIGURES.items() if (out_dir / f).exists()},
    }


def relationship_summary(es: EmbeddingSpace) -> dict:
    """The relationship pairs (importance, lcb, lift, active, protected) and the scoring's self-validation."""
    report = es.relationship_report()
    keep = [c for c in ("left", "right", "importance", "lcb", "lift", "n_paired", "n_unpaired", "active", "protected")
            if c in report.columns]
    pairs = report[keep].sort_values("importance", ascending=False, na_position="last") if "importance" in keep else report
    return {"pairs": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()}
                      for r in pairs.to_dict("records")],
            "validation": report.attrs.get("validation", {}),
            "swaps": len(report.attrs.get("swaps", []))}


def train_space(plan: TablePlan, filtered: pd.DataFrame, profile: dict | None, store: ArtifactStore,
                settings: FitSettings, run_id: str = "", rows: dict[str, pd.DataFrame] | None = None) -> dict:
    """A table's space, trained, saved (config.json + model.safetensors + JSON + figures) and
    summarised — or, when the same code, spec, settings and data trained it before, that version
    reused as it is. ``profile``: the table's profile asset (its columns are not profiled again);
    ``rows``: filtered rows of the table's lookup tables, joined in first."""
    features = space_rows(plan, filtered, rows)
    left_out = feature_frame(plan, filtered)[1]
    data = frame_fingerprint(features)
    held = evaluation_rows(plan, filtered.reset_index(drop=True), settings.seed)
    key = digest({"code": model_code_version(), "spec": plan.describe(), "settings": settings.training(), "data": data,
                  "evaluation_rows": SPLIT_SCHEME if held.any() else None})
    if (found := store.find(key)) is not None:
        return reused(found)
    tmp = store.start(key)
    es = EmbeddingSpace.fit(features, time_budget_s=settings.time_budget_s, seed=settings.seed, progress=False,
                            threads=settings.threads, output_dir=tmp, checkpoint_dir=store.checkpoints(key),
                            analysis=analysis_of(profile, features.columns) if profile else None, train_rows=~held)
    es.save(tmp)
    # the rows the version knew: its training rows first (in the order of its training embeddings), then
    # the evaluation rows it never trained on (known, so not new to drift)
    known = pd.concat([features[~held], features[held]], ignore_index=True)
    pd.DataFrame({HASH_COLUMN: row_hashes(known), "trained": np.arange(len(known)) < int((~held).sum())}).to_parquet(
        tmp / TRAINING_HASHES, index=False)
    if held.any():  # encoded once here, so a refresh encodes only new and changed rows
        io.save_tensors(tmp / EVALUATION_EMBEDDINGS, {"embeddings": torch.from_numpy(
            es.encode(features[held].reset_index(drop=True)))}, {}, format="featrix-evaluation-embeddings")
    summary = store.publish(key, tmp, {**space_summary(es, plan.name, len(features), tmp, int(held.sum())),
                                       "left_out": left_out,
                                       "data_hash": data["hash"], **trained(key, run_id, es.decisions)})
    store.prune(protect={key})
    return summary


def trained(key: str, run_id: str, decisions: list[str]) -> dict:
    """What every freshly trained artifact's summary records about its making."""
    return {"key": key, "reused": False, "trained_at": now_utc(), "trained_by_run": run_id, "decisions": decisions}


def space_rows(plan: TablePlan, filtered: pd.DataFrame, rows: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """The rows as the table's space reads them: features (``feature_frame``) with lookups joined in."""
    return plan.model_frame(feature_frame(plan, filtered)[0], rows or {})


def row_embeddings(plan: TablePlan, filtered: pd.DataFrame, space: dict, settings: FitSettings,
                   rows: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Primary key + ``emb_0..emb_{d-1}`` + short ``sx, sy, sz`` for every row (no row dropped).
    ``space``: the space asset's summary."""
    use_threads(settings.threads)
    es = EmbeddingSpace.load(space["path"])
    features = space_rows(plan, filtered, rows)
    emb, encoded = _embeddings(es, Path(space["path"]), features)
    short = emb[:, :3] / np.linalg.norm(emb[:, :3], axis=1, keepdims=True).clip(1e-8)  # spec §15
    pk = [c for c in plan.spec.primary_key if c in filtered.columns]
    out = filtered[pk].reset_index(drop=True).copy()
    out = pd.concat([out, pd.DataFrame(emb, columns=[f"emb_{i}" for i in range(emb.shape[1])]),
                     pd.DataFrame(short, columns=["sx", "sy", "sz"])], axis=1)
    assert len(out) == len(filtered) and np.isfinite(emb).all()
    out.attrs["rows_encoded"] = encoded
    out.attrs["row_accounting"] = accounting.account(
        len(filtered), {accounting.EMBEDDED: encoded, accounting.EMBEDDING_REUSED: len(out) - encoded},
        what=f"row embeddings of '{plan.name}'")
    return out


def _embeddings(es: EmbeddingSpace, path: Path, features: pd.DataFrame) -> tuple[np.ndarray, int]:
    """The rows' embeddings and how many were encoded: a row the space knew (same content hash) takes
    the embedding kept with it (its training embedding, or the held-out rows' saved ones), so a
    refresh encodes only new and changed rows."""
    hashes = path / TRAINING_HASHES
    if es.train_embeddings_ is None or not hashes.exists():
        return es.encode(features), len(features)
    known, bank = pd.read_parquet(hashes), es.train_embeddings_
    if "trained" in known.columns and not known["trained"].all():
        if (path / EVALUATION_EMBEDDINGS).exists():
            held = io.load_tensors(path / EVALUATION_EMBEDDINGS)[0]["embeddings"].numpy()
            bank = np.concatenate([bank, held.astype(bank.dtype, copy=False)])
        else:
            known = known[known["trained"]]
    trained = known[HASH_COLUMN].drop_duplicates()  # equal rows, equal embeddings
    pos = pd.Index(trained).get_indexer(row_hashes(features))
    known = pos >= 0
    emb = np.empty((len(features), bank.shape[1]), dtype=bank.dtype)
    emb[known] = bank[trained.index.to_numpy()[pos[known]]]
    if (~known).any():
        emb[~known] = es.encode(features[~known].reset_index(drop=True))
    return emb, int((~known).sum())
