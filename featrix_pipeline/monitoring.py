"""The refresh run's drift measurement of one table: its current rows against the rows its space was
trained on, and its targets' labels against those its serving predictors learned from. The torch
work (encoding for the OOD share) happens here, in a run, never in Dagster's sensor daemon; the
sensor only reads the result."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from featrix_model import EmbeddingSpace
from featrix_model.space import use_threads
from featrix_pipeline.drift import DriftThresholds, measure_drift
from featrix_pipeline.predictors import LABELS
from featrix_pipeline.settings import FitSettings
from featrix_pipeline.spaces import feature_frame
from featrix_pipeline.targets import target_values
from featrix_pipeline.topology import TablePlan


def table_drift(plan: TablePlan, raw: pd.DataFrame, filtered: pd.DataFrame, space: dict, predictors: dict[str, dict],
                thresholds: dict, settings: FitSettings, reports: Path, rows: dict[str, pd.DataFrame] | None = None
                ) -> dict:
    """The drift report of ``plan``'s table (written as ``<reports>/drift/<table>.md`` and ``.json``).
    ``space``: the table space's asset summary; ``predictors``: {target name: predictor summary} of the
    targets on this table; ``thresholds``: the spec's drift thresholds for the table."""
    use_threads(settings.threads)
    es = EmbeddingSpace.load(space["path"])
    training = pd.read_parquet(Path(space["path"]) / "training_rows.parquet")
    current = plan.model_frame(feature_frame(plan, filtered)[0], rows or {})
    targets = {}
    for t in plan.targets:
        labels = Path(predictors[t.name]["path"]) / LABELS if t.name in predictors else None
        if labels is not None and labels.exists():
            targets[t.name] = (pd.read_parquet(labels)["label"], target_values(raw, t))
    report = measure_drift(plan.name, es, training, current, DriftThresholds.from_dict(thresholds), targets=targets,
                           seed=settings.seed, time_columns=tuple(c for c in (plan.spec.time_column,) if c))
    out = {**report.to_dict(), "markdown": report.markdown(), "summary": report.summary(), "space": space["key"]}
    folder = reports / "drift"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{plan.name}.md").write_text(out["markdown"])
    (folder / f"{plan.name}.json").write_text(json.dumps({k: v for k, v in out.items() if k != "markdown"},
                                                        indent=1, default=str))
    return out
