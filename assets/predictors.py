"""Per-target assets: ``<target>/predictor`` (+ quality check against baselines) → ``<target>/predictions``."""

from pathlib import Path

import dagster as dg
import pandas as pd

from featrix_pipeline.predictors import quality_check, score_table, train_predictor
from assets.spaces import rows_in, rows_of
from featrix_pipeline.relational import child_tables, relational_parents, with_lookup_tables
from featrix_pipeline.resources import ModelSettings, WarehouseResource
from featrix_pipeline.spec import DatasetSpec, TargetSpec


def build_predictor_assets(spec: DatasetSpec, store_dir: Path) -> list:
    return [a for t in spec.targets if spec.tables[t.table].embedding_space
            for a in _predictor_assets(spec, t, store_dir)]


def _predictor_assets(spec: DatasetSpec, target: TargetSpec, store_dir: Path) -> list:
    out_dir = store_dir / target.name / "predictor"
    table = target.table
    relational = table in relational_parents(spec)
    children = child_tables(spec, table) if relational else []
    other_ins = rows_in([t for t in with_lookup_tables(spec, [table, *children]) if t != table])
    space_key = [table, "relational_space" if relational else "embedding_space"]

    @dg.asset(key=[target.name, "predictor"], group_name="predictors", kinds={"pytorch"},
              ins={"raw": dg.AssetIn([table, "raw"]), "filtered": dg.AssetIn([table, "filtered"]),
                   "space": dg.AssetIn(space_key), **other_ins},
              check_specs=[dg.AssetCheckSpec("beats_baselines", asset=[target.name, "predictor"], blocking=True,
                                             description="Beats the majority/mean baseline and trails LightGBM "
                                                         "(same split) by no more than the allowed margin.")],
              description=f"Calibrated, guarded predictor of `{target.name}` on `{table}`'s "
                          f"{'relational' if relational else 'embedding'} space, with "
                          "held-out metrics and a LightGBM baseline trained on the same split.")
    def predictor(context: dg.AssetExecutionContext, raw: pd.DataFrame, filtered: pd.DataFrame, space: dict,
                  model_settings: ModelSettings, **other_rows):
        p, s = train_predictor(spec, target, raw, filtered, space["path"], out_dir,
                               max_rows=model_settings.predictor_max_rows, seed=model_settings.seed,
                               rows=rows_of(other_rows))
        for d in s["decisions"]:
            context.log.info(f"[{target.name}] {d}")
        compare = pd.DataFrame([{"model": k, **s[k]} for k in ("metrics", "lightgbm", "baseline")]).replace(
            {"model": {"metrics": "ours", "lightgbm": "LightGBM", "baseline": "majority/mean"}})
        yield dg.Output(s, metadata={
            "path": dg.MetadataValue.path(s["path"]), "kind": s["kind"],
            "held_out": dg.MetadataValue.md(compare.to_markdown(index=False)),
            "loss": f"{s['loss']} — {s['loss_reason']}",
            "threshold": dg.MetadataValue.text(f"{s['threshold']} — {s['threshold_reason']}" if s["threshold"] else "n/a"),
            "calibration": str(s["calibration"]),
            **{f"figure_{k}": dg.MetadataValue.path(v) for k, v in s["figures"].items()}})
        margin = next(m for m in (model_settings.lightgbm_margin, target.lightgbm_margin, 0.02) if m is not None)
        ok, why = quality_check(s, margin)
        if target.note:
            why += f" — {target.note}"
        yield dg.AssetCheckResult(check_name="beats_baselines", passed=ok, severity=dg.AssetCheckSeverity.ERROR,
                                  description=why, metadata={"ours": dg.MetadataValue.json(s["metrics"]),
                                                             "lightgbm": dg.MetadataValue.json(s["lightgbm"]),
                                                             "baseline": dg.MetadataValue.json(s["baseline"])})

    @dg.asset(key=[target.name, "predictions"], group_name="predictors", kinds={"duckdb", "parquet"},
              ins={"filtered": dg.AssetIn([table, "filtered"]), "model": dg.AssetIn([target.name, "predictor"]), **other_ins},
              description=f"Every `{table}` row scored by the `{target.name}` predictor, written back to the "
                          f"warehouse as table `{target.name}_predictions` (run id, model version, timestamp).")
    def predictions(context: dg.AssetExecutionContext, filtered: pd.DataFrame, model: dict,
                    warehouse: WarehouseResource, **other_rows) -> dg.Output[pd.DataFrame]:
        scored = score_table(spec, target, filtered, model["path"], context.run_id, rows_of(other_rows))
        warehouse.get().write_table(f"{target.name}_predictions", scored)
        return dg.Output(scored, metadata={"dagster/row_count": len(scored),
                                           "warehouse_table": f"{target.name}_predictions",
                                           "preview": dg.MetadataValue.md(scored.head(10).to_markdown(index=False))})

    return [predictor, predictions]
