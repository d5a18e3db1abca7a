"""Per-target assets: ``<target>/predictor`` (+ its quality check against baselines) → ``<target>/predictions``."""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.automation import when_rebuilt
from assets.checks import beats_baselines, beats_baselines_spec
from assets.inputs import asset_in, rows_in, rows_of
from assets.metadata import figure_metadata, numbers, row_metadata, version_metadata
from assets.pools import TRAINING_POOL, training_tags
from assets.progress import progress_to_run_log
from assets.versions import model_code_version, versioned_output
from featrix_pipeline.predictions import ScoringRefused, score_rows
from featrix_pipeline.predictors import train_predictor
from featrix_pipeline.reuse import ArtifactStore
from featrix_pipeline.resources import ModelSettings, WarehouseResource
from featrix_pipeline.topology import TargetPlan, Topology
from featrix_pipeline.warehouse import warehouse_kind

MODELS = {"metrics": "ours", "lightgbm": "LightGBM", "baseline": "majority/mean"}


def build_predictor_assets(topology: Topology, store_dir: Path) -> list:
    return [a for plan in topology.targets for a in _predictor_assets(topology, plan, store_dir)]


def _candidate_line(s: dict) -> str:
    """What this run did: trained a candidate or reused it, and which version serves afterwards."""
    c = s["candidate"]
    how = "reused" if c.get("reused") else "trained"
    serves = "it serves" if c["key"] == s["key"] else f"{s['key']} keeps serving"
    return f"{how} candidate {c['key']}, trained {c.get('trained_at')} by run {c.get('trained_by_run')}; {serves}"


def _leakage(candidate: dict) -> dg.MetadataValue:
    """The candidate's leakage warnings: the input columns that alone predict the target."""
    found = candidate.get("leakage")
    if found is None:
        return dg.MetadataValue.text("not checked: a version trained before the leakage check")
    return dg.MetadataValue.json(found)


def _head(head: dict | None) -> str:
    """Which head predicts: the MLP on the embedding, trees on the embedding and raw columns, or a blend."""
    if not head:
        return "the MLP on the embedding (a version trained before heads were chosen)"
    if head["chosen"] == "mlp":
        return "the MLP on the embedding"
    what = "trees" if head["chosen"] == "trees" else f"{head['mlp_share']:g} × MLP + {1 - head['mlp_share']:g} × trees"
    return f"{what} — {head['trees']['why']}" if head.get("trees") else what


def _predictor_assets(topology: Topology, plan: TargetPlan, store_dir: Path) -> list:
    table, key = plan.table.name, plan.key("predictor")
    store = ArtifactStore(store_dir.joinpath(*key), topology.spec.retention)
    other_ins = rows_in(topology, topology.reads(table))
    space_kind = "relational" if plan.table.has_relational_space else "embedding"

    @dg.asset(key=list(key), group_name=topology.group(plan), kinds={"pytorch"}, code_version=model_code_version(plan.table, plan.target),
              pool=TRAINING_POOL, op_tags=training_tags(topology, key),
              automation_condition=when_rebuilt([plan.space_key]),
              ins={"raw": asset_in(plan.table.key("raw")), "filtered": asset_in(plan.table.key("filtered")),
                   "space": asset_in(plan.space_key), **other_ins},
              check_specs=[beats_baselines_spec(key)],
              description=f"{plan.name} on {table}: calibrated, guarded predictor of `{plan.name}` on `{table}`'s "
                          f"{space_kind} space, with held-out metrics and a LightGBM baseline trained on the same split.")
    def predictor(context: dg.AssetExecutionContext, raw: pd.DataFrame, filtered: pd.DataFrame, space: dict,
                  model_settings: ModelSettings, **other_rows):
        settings = model_settings.fit_settings()
        with progress_to_run_log(context, plan.name):
            s = train_predictor(topology, plan, raw, filtered, space, store, settings, context.run_id,
                                rows=rows_of(other_rows))
        for d in s["decisions"] + s["notes"]:
            (context.log.warning if d.startswith("[WARN]") else context.log.info)(f"[{plan.name}] {d}")
        context.log.info(f"[{plan.name}] promotion: {s['promotion']['why']}")
        compare = pd.DataFrame([{"model": name, **s[k]} for k, name in MODELS.items()])
        yield versioned_output(s, {
            **version_metadata(s), "reuse": _candidate_line(s), "promotion": s["promotion"]["why"],
            "candidate": dg.MetadataValue.json(s["candidate"]),
            "path": dg.MetadataValue.path(s["path"]), "kind": s["kind"],
            "held_out": dg.MetadataValue.md(compare.to_markdown(index=False)),
            **numbers("held_out", s["metrics"]), **numbers("lightgbm", s["lightgbm"]), **numbers("baseline", s["baseline"]),
            "loss": f"{s['loss']} — {s['loss_reason']}",
            "threshold": dg.MetadataValue.text(f"{s['threshold']} — {s['threshold_reason']}" if s["threshold"] else "n/a"),
            "calibration": str(s["calibration"]), **figure_metadata(s["figures"]),
            **row_metadata(s["candidate"].get("row_accounting")),  # this run's rows, the candidate's training rows
            "leakage": _leakage(s["candidate"]),
            "head": _head(s["candidate"].get("head")),
            "explained_examples": dg.MetadataValue.json(s["candidate"].get("examples") or []),
            "hidden": dg.MetadataValue.json(s["candidate"].get("hidden_why") or {c: "" for c in s.get("hidden", [])})})
        yield beats_baselines(s, settings.margin_for(plan.target.lightgbm_margin), plan.target.note)

    @dg.asset(key=list(plan.key("predictions")), group_name=topology.group(plan), kinds={warehouse_kind(topology.spec.warehouse_url), "pandas"},
              automation_condition=when_rebuilt([key]),
              ins={"filtered": asset_in(plan.table.key("filtered")), "model": asset_in(key), **other_ins},
              description=f"{plan.name} on {table}: every `{table}` row scored by the serving `{plan.name}` predictor, "
                          f"in the warehouse table "
                          f"`{plan.name}_predictions`: only rows that are new, changed or scored by an older model "
                          "version are scored again; the table is replaced all at once, or not at all.")
    def predictions(context: dg.AssetExecutionContext, filtered: pd.DataFrame, model: dict,
                    warehouse: WarehouseResource, model_settings: ModelSettings, **other_rows) -> dg.Output[dict]:
        try:
            done = score_rows(topology, plan, filtered, model, warehouse.get(), context.run_id,
                              model_settings.fit_settings(), rows_of(other_rows))
        except ScoringRefused as e:
            raise dg.Failure(description=str(e)) from None
        scored = done.pop("scored")
        context.log.info(f"[{plan.name}] {done['to_score']:,} rows scored, {done['kept']:,} kept, "
                         f"{done['removed']:,} removed" + ("" if done["written"] else "; nothing to write"))
        return dg.Output(done, metadata={
            **row_metadata(done.get("row_accounting")),
            "dagster/row_count": done["current"], "rows_scored": done["to_score"], "rows_kept": done["kept"],
            "rows_removed": done["removed"], "written": done["written"], "warehouse_table": done["table"], "model_version": done["model_version"],
            "scored_preview": dg.MetadataValue.md(scored.head(10).to_markdown(index=False) if len(scored) else "none")})

    return [predictor, predictions]
