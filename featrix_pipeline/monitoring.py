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
from featrix_pipeline.predictors import label_hashes, version_labels
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


def _known_labels(predictor: dict) -> pd.DataFrame | None:
    """The labelled rows the predictor's latest version (the candidate, promoted or not) was fitted and
    measured on: a shift is measured against what the last retrain saw, on rows it did not see, so a
    retrain for a shift does not ask again."""
    return version_labels(Path(predictor["path"]).parent / predictor["candidate"]["key"])


def _target_inputs(plan: TablePlan, raw: pd.DataFrame, predictors: dict[str, dict], is_new: np.ndarray,
                   notes: list[str]) -> tuple[dict, np.ndarray]:
    """{target: (training labels, labels of rows its version never saw)} and the union of those rows."""
    targets, unseen_any = {}, np.zeros(len(raw), dtype=bool)
    keys = raw[list(plan.spec.primary_key)]
    for t in plan.targets:
        known = _known_labels(predictors[t.name]) if t.name in predictors else None
        if known is None:
            notes.append(f"{t.name}: prior shift not measured: its predictor version keeps no training labels "
                         "(retrain it to start measuring)")
            continue
        values = target_values(raw, t).reset_index(drop=True)
        if "label_hash" in known.columns:
            unseen = ~label_hashes(keys, values).isin(set(known["label_hash"])).to_numpy() & values.notna().to_numpy()
        else:  # a version from before label hashes were kept
            unseen = is_new
        trained_labels = known.loc[known["trained"], "label"] if "trained" in known.columns else known["label"]
        targets[t.name] = (trained_labels.reset_index(drop=True), values[unseen].reset_index(drop=True))
        unseen_any |= unseen
    return targets, unseen_any


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
    is_new, notes = new_rows(path, current), []
    targets, unseen = _target_inputs(plan, raw, predictors, is_new, notes)
    fresh = current[is_new | unseen].reset_index(drop=True)
    if len(fresh):
        report = measure_drift(plan.name, es, training, fresh, DriftThresholds.from_dict(thresholds), targets=targets,
                               seed=settings.seed, time_columns=tuple(c for c in (plan.spec.time_column,) if c))
        out = {**report.to_dict(), "markdown": report.markdown(), "summary": report.summary()}
    else:
        out = _unchanged(plan.name, len(training))
    out.update(space=space["key"], n_new_rows=int(len(fresh)), n_rows=int(len(current)))
    out["reasons"] = [*out["reasons"], *notes]
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
