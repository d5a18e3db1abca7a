"""The refresh run's drift measurement of one table: the rows that arrived or changed since its space
was trained, against the rows it was trained on, and its targets' labels against those its latest
predictor learned from. The torch work (encoding for the OOD share) happens here, in a run, never in
Dagster's sensor daemon; the sensor only reads the result.

Rows the space was trained on are recognised by their content hash (stored beside each space
version), so a shift in a day of new rows is measured on that day, not diluted by a year of old
ones. A column the space uses that the table no longer has asks for a retrain on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from featrix_model import EmbeddingSpace
from featrix_model.space import use_threads
from featrix_pipeline.drift import DriftThresholds, measure_drift
from featrix_pipeline.predictors import LABELS
from featrix_pipeline.scoring import HASH_COLUMN, row_hashes
from featrix_pipeline.settings import FitSettings
from featrix_pipeline.spaces import TRAINING_HASHES, space_rows
from featrix_pipeline.targets import target_values
from featrix_pipeline.topology import TablePlan


def new_rows(space_path: Path, current: pd.DataFrame) -> np.ndarray:
    """True for the rows of ``current`` the space version was not trained on (new, or changed since)."""
    hashes = space_path / TRAINING_HASHES
    if not hashes.exists():  # a version from before hashes were kept: compare every row
        return np.ones(len(current), dtype=bool)
    seen = set(pd.read_parquet(hashes)[HASH_COLUMN])
    return ~row_hashes(current).isin(seen).to_numpy()


def _labels(predictor: dict) -> Path | None:
    """The training labels of the predictor's latest version (the candidate, promoted or not): a shift
    is measured against what the last retrain saw, so an unpromoted candidate does not ask again."""
    latest = predictor["candidate"]["key"]
    path = Path(predictor["path"]).parent / latest / LABELS
    return path if path.exists() else None


def table_drift(plan: TablePlan, raw: pd.DataFrame, filtered: pd.DataFrame, space: dict, predictors: dict[str, dict],
                thresholds: dict, settings: FitSettings, reports: Path, rows: dict[str, pd.DataFrame] | None = None
                ) -> dict:
    """The drift report of ``plan``'s table (written as ``<reports>/drift/<table>.md`` and ``.json``).
    ``space``: the table space's asset summary; ``predictors``: {target name: predictor summary} of the
    targets on this table; ``thresholds``: the spec's drift thresholds for the table."""
    use_threads(settings.threads)
    path = Path(space["path"])
    es = EmbeddingSpace.load(path)
    training = pd.read_parquet(path / "training_rows.parquet")
    current = space_rows(plan, filtered, rows)  # same rows, same order as raw and filtered
    is_new = new_rows(path, current)
    fresh = current[is_new].reset_index(drop=True)
    targets = {}
    for t in plan.targets:
        labels = _labels(predictors[t.name]) if t.name in predictors else None
        if labels is not None:
            targets[t.name] = (pd.read_parquet(labels)["label"], target_values(raw, t)[is_new].reset_index(drop=True))
    if len(fresh):
        report = measure_drift(plan.name, es, training, fresh, DriftThresholds.from_dict(thresholds), targets=targets,
                               seed=settings.seed, time_columns=tuple(c for c in (plan.spec.time_column,) if c))
        out = {**report.to_dict(), "markdown": report.markdown(), "summary": report.summary()}
    else:
        out = _unchanged(plan.name, len(training))
    out.update(space=space["key"], n_new_rows=int(len(fresh)), n_rows=int(len(current)))
    _missing_columns(out, [c for c in es.plan.columns if c not in current.columns])
    folder = reports / "drift"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{plan.name}.md").write_text(out["markdown"])
    (folder / f"{plan.name}.json").write_text(json.dumps({k: v for k, v in out.items() if k != "markdown"},
                                                        indent=1, default=str))
    return out


def _unchanged(table: str, n_training: int) -> dict:
    line = f"{table}: no row arrived or changed since the space was trained ({n_training:,} rows): nothing to measure"
    return {"table": table, "status": "ok", "drifted": [], "warned": [], "retrain_space": False,
            "retrain_targets": [], "ood_share": 0.0, "reasons": [line], "summary": line, "markdown": line}


def _missing_columns(out: dict, missing: list[str]) -> None:
    """A column the space uses that the rows no longer have: the space must be retrained."""
    if not missing:
        return
    why = (f"columns {missing} that the space was trained on are no longer in the table: they are encoded as "
           "missing until the space is retrained")
    out.update(status="retrain", retrain_space=True, drifted=sorted(set(out["drifted"]) | set(missing)),
               reasons=[why, *out["reasons"]], summary=f"{out['summary']}; {why}",
               markdown=f"**{why}**\n\n{out['markdown']}")
