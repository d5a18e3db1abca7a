"""``<table>/drift``: each refresh measures how far the table's rows have moved from the rows its space
was trained on (and its targets from the labels its predictors learned); the drift sensor acts on it."""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.automation import when_rebuilt
from assets.inputs import asset_in, rows_in, rows_of
from assets.versions import quality_code_version
from featrix_pipeline.monitoring import table_drift
from featrix_pipeline.resources import ModelSettings
from featrix_pipeline.topology import TablePlan, Topology

SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "retrain": dg.AssetCheckSeverity.ERROR}


def build_drift_assets(topology: Topology, reports_dir: Path) -> list:
    return [_drift_asset(topology, plan, reports_dir) for plan in topology.tables.values() if plan.has_space]


def _drift_asset(topology: Topology, plan: TablePlan, reports_dir: Path):
    key = list(plan.key("drift"))
    targets = [t for t in topology.targets if t.table.name == plan.name]
    ins = {"raw": asset_in(plan.key("raw")), "filtered": asset_in(plan.key("filtered")),
           "space": asset_in(plan.key("embedding_space")), **rows_in(topology, plan.lookup_tables),
           **{f"{t.name}_predictor": asset_in(t.key("predictor")) for t in targets}}

    @dg.asset(key=key, group_name=plan.name, kinds={"pandas"}, ins=ins,
              code_version=quality_code_version([plan.describe(), topology.spec.drift_thresholds(plan.name)]),
              automation_condition=when_rebuilt([plan.key("embedding_space")]),
              check_specs=[dg.AssetCheckSpec("drift", asset=key, description=(
                  "The table's rows against its space's training rows: passes when no column's PSI exceeds the "
                  "warning threshold; WARN between the thresholds; ERROR above the retrain threshold (the drift "
                  "sensor then asks for a retrain)."))],
              description=f"How far `{plan.name}`'s new and changed rows have moved from the rows its space was trained on "
                          "(PSI and KL per column, share of rows beyond 3σ of the training embeddings, target shift).")
    def drift(context: dg.AssetExecutionContext, raw: pd.DataFrame, filtered: pd.DataFrame, space: dict,
              model_settings: ModelSettings, **inputs):
        predictors = {t.name: inputs[f"{t.name}_predictor"] for t in targets}
        report = table_drift(plan, raw, filtered, space, predictors, topology.spec.drift_thresholds(plan.name),
                             model_settings.fit_settings(), reports_dir, rows_of(inputs))
        context.log.info(f"[{plan.name}] drift: {report['summary']}")
        yield dg.Output(report, metadata={
            "status": report["status"], "drifted_columns": dg.MetadataValue.json(report["drifted"]),
            "retrain_space": report["retrain_space"], "retrain_targets": dg.MetadataValue.json(report["retrain_targets"]),
            "ood_share": float(report["ood_share"]), "rows_measured": report["n_new_rows"],
            "dagster/row_count": report["n_rows"], "report": dg.MetadataValue.md(report["markdown"])})
        yield dg.AssetCheckResult(check_name="drift", passed=report["status"] == "ok",
                                  severity=SEVERITY.get(report["status"], dg.AssetCheckSeverity.WARN),
                                  description=report["summary"],
                                  metadata={"drifted_columns": dg.MetadataValue.json(report["drifted"])})

    return drift
