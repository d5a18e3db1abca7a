"""Predictions of a target's table by its serving predictor, written back to the warehouse — only
for the rows that need one.

A row is scored when it is new, when its content changed since it was scored (its own columns, the
lookup columns joined into it, and for a relational space its child rows), or when a new model
version serves. The table ``<target>_predictions`` is then replaced all at once by the kept rows
plus the new ones; when nothing needs scoring, nothing is written.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from featrix_model.predictor import Predictor
from featrix_model.space import use_threads
from featrix_pipeline import accounting
from featrix_pipeline.predictors import child_tables
from featrix_pipeline.scoring import HASH_COLUMN, VERSION_COLUMN, group_hashes, merged, plan_scoring, row_hashes
from featrix_pipeline.settings import FitSettings
from featrix_pipeline.evaluation import quality_gate
from featrix_pipeline.topology import TargetPlan, Topology
from featrix_pipeline.warehouse import Warehouse


class ScoringRefused(RuntimeError):
    """Predictions are not written, for the reason the message gives (and what to do about it)."""


class QualityGateError(ScoringRefused):
    """The serving predictor failed its quality gate: its predictions are not written."""


def table_name(plan: TargetPlan) -> str:
    return f"{plan.name}_predictions"


def current_hashes(topology: Topology, plan: TargetPlan, frame: pd.DataFrame,
                   rows: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Key columns + the content hash of each row as the predictor sees it (``frame``: the table's
    rows with their lookups joined in); for a relational space mixed with each parent's child rows."""
    table = plan.table
    pk = list(table.spec.primary_key)
    extra = None
    if table.has_relational_space:
        children = topology.model_tables(table.name, rows)
        links = []
        for r in table.children:
            per_parent = group_hashes(children[r.child], list(r.child_keys)).rename(
                columns=dict(zip(r.child_keys, r.parent_keys)))
            links.append(frame[list(r.parent_keys)].merge(per_parent, how="left", on=list(r.parent_keys))[HASH_COLUMN]
                         .rename(f"{r.name}.{HASH_COLUMN}").reset_index(drop=True))
        extra = row_hashes(pd.concat(links, axis=1))
    out = frame[pk].reset_index(drop=True).copy()
    out[HASH_COLUMN] = row_hashes(frame.reset_index(drop=True), extra).to_numpy()
    return out


def scoring_accounting(rows_in: int, scoring: dict, target: str) -> dict:
    """Where a refresh's rows went (``ScoringPlan.summary()``): scored now, or their stored prediction
    kept. A row in neither (two current rows with the same key share one stored row) raises."""
    used = {accounting.SCORED: scoring["to_score"], accounting.ALREADY_SCORED: scoring["kept"]}
    return accounting.account(rows_in, used, what=f"predictions of '{target}'")


def score_rows(topology: Topology, plan: TargetPlan, filtered: pd.DataFrame, predictor: dict, warehouse: Warehouse,
               run_id: str, settings: FitSettings, rows: dict[str, pd.DataFrame] | None = None) -> dict:
    """Score what needs scoring and write the predictions table back; a summary of what was done.
    ``predictor``: the predictor asset's summary (the serving version); ``rows``: as for training."""
    use_threads(settings.threads)
    passed, why = quality_gate(predictor, settings.margin_for(plan.target.lightgbm_margin))  # today's margin
    if not passed:
        source = ("the run setting FEATRIX_LIGHTGBM_MARGIN" if settings.lightgbm_margin is not None else
                  f"target '{plan.name}''s lightgbm_margin" if plan.target.lightgbm_margin is not None else
                  "the default margin (set the target's lightgbm_margin to change it)")
        raise QualityGateError(f"the serving '{plan.name}' predictor ({predictor['key']}) fails its quality gate "
                               f"({why}; the margin comes from {source}); no predictions are written until a "
                               "version passes: run retrain after fixing the data or the target, or relax that "
                               "margin with a reason.")
    table = plan.table
    rows = {**(rows or {}), table.name: filtered}
    frame = table.model_frame(filtered.drop(columns=[plan.target.column], errors="ignore"), rows)
    pk = list(table.spec.primary_key)
    current = current_hashes(topology, plan, frame, rows)
    _refuse_duplicate_keys(current, pk, plan.table.name)
    scoring = plan_scoring(current, pk, warehouse.read_optional(table_name(plan)), predictor["model_version"])
    summary = {"table": table_name(plan), "model_version": predictor["model_version"], **scoring.summary(),
               "written": False}
    summary["row_accounting"] = scoring_accounting(len(filtered), summary, plan.name)
    if scoring.nothing_to_do():
        return {**summary, "scored": pd.DataFrame(columns=pk)}
    todo = scoring.to_score
    scored = pd.DataFrame()
    if todo.any():  # rows were only removed: nothing to predict, the kept rows are written back
        p = Predictor.load(predictor["path"], tables=child_tables(topology, plan, rows))
        scored = _prediction_frame(p, frame[todo].reset_index(drop=True), pk, run_id)
        scored[HASH_COLUMN] = current[HASH_COLUMN][todo].to_numpy()
    warehouse.write_table(table_name(plan), merged(scoring, scored))
    return {**summary, "written": True, "scored": scored if len(scored) else pd.DataFrame(columns=pk)}


def _prediction_frame(p: Predictor, frame: pd.DataFrame, pk: list[str], run_id: str) -> pd.DataFrame:
    """Primary key, prediction, probability/interval, confidence, OOD distance, warnings, provenance."""
    resp = p.predict_frame(frame, explain=False)
    out = frame[pk].reset_index(drop=True).copy()
    out["prediction"] = resp["prediction"].astype(str)
    if "probability" in resp:
        out["probability"] = resp["probability"].astype(float)
    if "confidence_interval" in resp:
        out["interval_low"] = resp["confidence_interval"].map(lambda v: v[0])
        out["interval_high"] = resp["confidence_interval"].map(lambda v: v[1])
    out["confidence"] = resp["confidence"]
    out["ood_sigma"] = resp["ood_sigma"].astype(float)
    out["warnings"] = resp["warnings"].map(lambda w: "; ".join(w))
    out["run_id"], out[VERSION_COLUMN] = run_id, p.model_version_
    out["scored_at"] = pd.Timestamp(dt.datetime.now(dt.timezone.utc)).tz_localize(None)
    return out


def _refuse_duplicate_keys(current: pd.DataFrame, pk: list[str], table: str) -> None:
    """Two current rows with one primary key would share one prediction row (one of them lost)."""
    repeated = current[current.duplicated(pk, keep=False)]
    if len(repeated):
        examples = repeated[pk].drop_duplicates().head(3).to_dict("records")
        raise ScoringRefused(f"table '{table}' has {len(repeated):,} rows whose primary key ({', '.join(pk)}) repeats, "
                         f"e.g. {examples}: each row's prediction is stored under its key, so one of them would be "
                         f"lost. Deduplicate '{table}' at the source or declare a primary key that is unique "
                         f"(its primary_key check on {table}/profile shows the rows).")
