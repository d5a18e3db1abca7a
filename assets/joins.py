"""Per-relationship ``<relationship>/join_report`` assets with blocking join checks."""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.checks import examples_md
from assets.inputs import asset_in
from assets.versions import content_output, quality_code_version
from featrix_model.jsonable import to_jsonable
from featrix_pipeline.joins import CheckOutcome, validate_join
from featrix_pipeline.privacy import allowed_columns
from featrix_pipeline.report import refresh_report
from featrix_pipeline.spec import RelationshipSpec
from featrix_pipeline.targets import target_values
from featrix_pipeline.topology import Topology

CHECKS = {
    "coverage": "Share of child rows whose key finds a parent (warning under the relationship's threshold).",
    "key_types": "Key columns on both sides have compatible types (e.g. not INTEGER vs '1' strings).",
    "cardinality": "Observed cardinality matches the declared one (no hidden many-to-many row explosion).",
    "duplicate_parent_keys": "The parent's primary key and join key are unique.",
    "key_nulls": "Share of child rows with a null join key stays under max_key_null_ratio.",
    "temporal_consistency": "Child timestamps fall inside the parent's time range.",
}


def build_join_assets(topology: Topology, store_dir: Path, reports_dir: Path) -> list:
    return [_join_asset(topology, rel, store_dir, reports_dir) for rel in topology.spec.relationships]


def _join_asset(topology: Topology, rel: RelationshipSpec, store_dir: Path, reports_dir: Path):
    spec, key = topology.spec, list(topology.join_key(rel))
    child_time, parent_time = topology.time_columns(rel)
    names = [n for n in CHECKS if n != "temporal_consistency" or child_time]
    specs = [dg.AssetCheckSpec(n, asset=key, blocking=True, description=CHECKS[n]) for n in names]

    @dg.asset(key=key, group_name=topology.group(rel), check_specs=specs, kinds={"pandas"}, code_version=quality_code_version(rel),
              ins={"child": asset_in(topology[rel.child].key("raw")), "parent": asset_in(topology[rel.parent].key("raw"))},
              description=f"{rel.child} → {rel.parent} on {', '.join(rel.child_keys)}: validation of the join "
                          f"`{rel.condition}` ({rel.cardinality}): coverage, key types, declared vs observed cardinality, "
                          "orphans, duplicate parent keys, distribution shift.")
    def join_report(context: dg.AssetExecutionContext, child: pd.DataFrame, parent: pd.DataFrame):
        targets = {}
        for tgt in spec.targets_of(rel.child):
            try:
                targets[tgt.name] = target_values(child, tgt)
            except (KeyError, ValueError) as e:
                context.log.warning(str(e))
        allowed = {t: allowed_columns(topology[t].spec) for t in (rel.child, rel.parent)}
        rep = validate_join(rel, child, parent, parent_primary_key=topology[rel.parent].spec.primary_key,
                            child_time_column=child_time, parent_time_column=parent_time, target_columns=targets or None,
                            child_primary_key=topology[rel.child].spec.primary_key, allowed_personal_data=allowed)
        md = rep.markdown()
        yield content_output({"report": rep.to_dict(), "markdown": md}, {
            "coverage": float(rep.coverage), "observed_cardinality": rep.observed_cardinality,
            "orphan_rows": int(rep.orphan_rows), "report": dg.MetadataValue.md(md)})
        _, md_path, _ = refresh_report(spec, store_dir, reports_dir, context.run_id)
        context.log.info(f"Data-quality report: {md_path} (and report.html beside it)")
        produced = {c.name: c for c in rep.checks}
        for n in names:
            c = produced.get(n) or CheckOutcome(n, False, "WARN", (
                f"{n} could not be checked because the join validation of {rel.name} produced no result for it "
                f"(see the other checks of {rel.name}); fix what they report and materialize again."), {})
            yield dg.AssetCheckResult(
                check_name=n, passed=bool(c.passed), description=c.description,
                severity=dg.AssetCheckSeverity.ERROR if c.severity == "ERROR" else dg.AssetCheckSeverity.WARN,
                metadata={"details": dg.MetadataValue.json(to_jsonable(c.metadata)),
                          "examples": dg.MetadataValue.md(examples_md(c.metadata.get("examples") or []))})

    return join_report
