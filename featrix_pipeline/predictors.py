"""Predictors declared in the spec: train on the space the topology puts under each target, measure
on held-out rows against the baselines (``evaluation``), and score every row for the warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from featrix_model import load_space
from featrix_model.predictor import Predictor
from featrix_model.space import use_threads
from featrix_pipeline.evaluation import held_out_split, lightgbm_baseline, naive_baseline
from featrix_pipeline.figures import predictor_figures
from featrix_pipeline.settings import FitSettings
from featrix_pipeline.targets import target_values
from featrix_pipeline.topology import TargetPlan, Topology


def training_frame(plan: TargetPlan, raw: pd.DataFrame, filtered: pd.DataFrame, max_rows: int | None,
                   seed: int) -> tuple[pd.DataFrame, list[str]]:
    """Filtered table + the target column (evaluated on the raw snapshot), at most ``max_rows`` rows."""
    df = filtered.copy()
    df[plan.target.column] = target_values(raw, plan.target).to_numpy()
    notes = []
    if max_rows and len(df) > max_rows:
        df = df.sample(n=max_rows, random_state=seed).reset_index(drop=True)
        notes.append(f"trained on a seeded sample of {max_rows:,} of {len(filtered):,} rows")
    return df, notes


def hidden_features(plan: TargetPlan) -> tuple[str, ...]:
    """Columns the predictor may not use: the target's ``exclude_features`` and a single-column key."""
    row_id = plan.table.row_id
    return tuple(dict.fromkeys((*plan.target.exclude_features, *((row_id,) if row_id else ()))))


def _child_tables(topology: Topology, plan: TargetPlan, rows: dict[str, pd.DataFrame]) -> dict | None:
    """The tables a relational space reads its parents' children from (None for a table space)."""
    table = plan.table
    return topology.model_tables(table.name, rows) if table.has_relational_space else None


def train_predictor(topology: Topology, plan: TargetPlan, raw: pd.DataFrame, filtered: pd.DataFrame,
                    space_path: str | Path, out_dir: Path, settings: FitSettings,
                    rows: dict[str, pd.DataFrame] | None = None) -> tuple[Predictor, dict]:
    """Train, save and measure a target's predictor. ``rows``: filtered rows of the other tables the
    table's models read (lookups; children of a relational space and their lookups)."""
    target = plan.target
    df, notes = training_frame(plan, raw, filtered, settings.predictor_max_rows, settings.seed)
    unlabelled = df[target.column].isna()
    if unlabelled.any():
        notes.append(f"[WARN] {int(unlabelled.sum()):,} rows have no value for '{target.name}': left out of training "
                     "and of the held-out metrics (they are still scored by the predictions asset)")
    df = df[~unlabelled].reset_index(drop=True)
    rows = {**(rows or {}), plan.table.name: filtered}
    df = plan.table.model_frame(df, rows)
    hide = hidden_features(plan)
    es = load_space(space_path, tables=_child_tables(topology, plan, rows))
    test = held_out_split(len(df), settings.seed)
    train_df, test_df = df[~test].reset_index(drop=True), df[test].reset_index(drop=True)
    p = Predictor.fit(es, train_df, target=target.column, kind=target.kind, positive_label=target.positive_label,
                      cost_false_positive=target.cost_false_positive, cost_false_negative=target.cost_false_negative,
                      exclude_features=hide, seed=settings.seed, time_budget_s=settings.time_budget_s,
                      threads=settings.threads)
    p.save(out_dir)
    task = p.task_
    resp = p.predict_frame(test_df.drop(columns=[target.column]), explain=False)
    y_tr, y_te = train_df[target.column].to_numpy(), test_df[target.column].to_numpy()
    lgb_train, lgb_test = train_df, test_df
    if plan.table.has_relational_space:  # LightGBM gets the same per-parent child counts and means
        lgb_train, lgb_test = es.child_aggregates(train_df), es.child_aggregates(test_df)
    features = [c for c in es.plan.columns if c not in hide and c != target.column and c in lgb_train.columns]
    lgb = lightgbm_baseline(task, lgb_train[features], y_tr, lgb_test[features], settings.seed)
    fitted = p.summary()
    summary = {**{k: fitted.get(k) for k in ("kind", "primary_metric", "higher_is_better", "loss", "loss_reason",
                                             "threshold", "threshold_reason", "decisions", "model_version")},
               "path": str(out_dir), "target": target.name, "rows_train": int(len(train_df)),
               "rows_test": int(len(test_df)), "features": features, "hidden": list(hide), "notes": notes,
               "metrics": task.metrics(y_te, resp), "lightgbm": task.metrics(y_te, lgb),
               "baseline": task.metrics(y_te, naive_baseline(task, y_tr, len(test_df))),
               "calibration": (fitted.get("calibration") or {}).get("method"),
               "figures": predictor_figures(task, y_te, resp, out_dir)}
    return p, summary


def score_table(topology: Topology, plan: TargetPlan, filtered: pd.DataFrame, predictor_path: str | Path,
                run_id: str, settings: FitSettings, rows: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Every row of the table scored: primary key, prediction, probability/interval, confidence, OOD.
    ``rows``: as for ``train_predictor``."""
    use_threads(settings.threads)
    table = plan.table
    rows = {**(rows or {}), table.name: filtered}
    p = Predictor.load(predictor_path, tables=_child_tables(topology, plan, rows))
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
