"""Predictions of every row of a target's table by its serving predictor, for the warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from featrix_model.predictor import Predictor
from featrix_model.space import use_threads
from featrix_pipeline.predictors import child_tables
from featrix_pipeline.settings import FitSettings
from featrix_pipeline.topology import TargetPlan, Topology


def score_table(topology: Topology, plan: TargetPlan, filtered: pd.DataFrame, predictor_path: str | Path,
                run_id: str, settings: FitSettings, rows: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Every row of the table scored: primary key, prediction, probability/interval, confidence, OOD.
    ``rows``: as for ``train_predictor``."""
    use_threads(settings.threads)
    table = plan.table
    rows = {**(rows or {}), table.name: filtered}
    p = Predictor.load(predictor_path, tables=child_tables(topology, plan, rows))
    frame = table.model_frame(filtered.drop(columns=[plan.target.column], errors="ignore"), rows)
    resp = p.predict_frame(frame, explain=False)
    out = filtered[list(table.spec.primary_key)].reset_index(drop=True).copy()
    out["prediction"] = resp["prediction"].astype(str)
    if "probability" in resp:
        out["probability"] = resp["probability"].astype(float)
    if "confidence_interval" in resp:
        out["interval_low"] = resp["confidence_interval"].map(lambda v: v[0])
        out["interval_high"] = resp["confidence_interval"].map(lambda v: v[1])
    out["confidence"] = resp["confidence"]
    out["ood_sigma"] = resp["ood_sigma"].astype(float)
    out["warnings"] = resp["warnings"].map(lambda w: "; ".join(w))
    out["run_id"], out["model_version"] = run_id, p.model_version_
    out["scored_at"] = pd.Timestamp(dt.datetime.now(dt.timezone.utc)).tz_localize(None)
    return out
