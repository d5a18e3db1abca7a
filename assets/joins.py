"""Per-relationship ``<relationship>/join_report`` assets with blocking join checks."""

from pathlib import Path

import dagster as dg
import pandas as pd

from featrix_pipeline.joins import validate_join
from featrix_pipeline.report import refresh_report
from featrix_model.jsonable import to_jsonable
from featrix_pipeline.spec import DatasetSpec, RelationshipSpec
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


def has_time_info(spec: DatasetSpec, rel: RelationshipSpec) -> bool:
    return bool(spec.tables[rel.child].time_column and spec.tables[rel.parent].time_column)


def build_join_assets(topology: Topology, store_dir: Path, reports_dir: Path) -> list:
    spec = topology.spec
    return [_join_asset(spec, rel, store_dir, reports_dir) for rel in spec.relationships]


def _join_asset(spec: DatasetSpec, rel: RelationshipSpec, store_dir: Path, reports_dir: Path):
    names = [n for n in CHECKS if n != "temporal_consistency" or has_time_info(spec, rel)]
    specs = [dg.AssetCheckSpec(n, asset=[rel.name, "join_report"], blocking=True, description=CHECKS[n]) for n in names]
    child_t, parent_t = spec.tables[rel.child], spec.tables[rel.parent]

    @dg.asset(key=[rel.name, "join_report"], group_name="joins", check_specs=specs, kinds={"pandas"},
              ins={"child": dg.AssetIn([rel.child, "raw"]), "parent": dg.AssetIn([rel.parent, "raw"])},
              description=f"Validation of the join `{rel.condition}` ({rel.cardinality}): coverage, key types, "
                          "declared vs observed cardinality, orphans, duplicate parent keys, distribution shift.")
    def join_report(context: dg.AssetExecutionContext, child: pd.DataFrame, parent: pd.DataFrame):
        targets = {}
        for tgt in spec.targets_of(rel.child):
            try:
                targets[tgt.name] = target_values(child, tgt)
            except (KeyError, ValueError) as e:
                context.log.warning(str(e))
        rep = validate_join(
            rel, child, parent, parent_primary_key=parent_t.primary_key,
            child_time_column=child_t.time_column if has_time_info(spec, rel) else None,
            parent_time_column=parent_t.time_column if has_time_info(spec, rel) else None,
            target_columns=targets or None)
        md = rep.markdown()
        yield dg.Output({"report": rep.to_dict(), "markdown": md}, metadata={
            "coverage": float(rep.coverage), "observed_cardinality": rep.observed_cardinality,
            "orphan_rows": int(rep.orphan_rows), "report": dg.MetadataValue.md(md)})
        _, md_path, _ = refresh_report(spec, store_dir, reports_dir, context.run_id)
        context.log.info(f"Data-quality report: {md_path} (and report.html beside it)")
        produced = {c.name: c for c in rep.checks}
        for n in names:
            c = produced.get(n)
            if c is None:
                raise dg.Failure(f"join validation produced no '{n}' check for {rel.name}")
            examples = c.metadata.get("examples") or []
            yield dg.AssetCheckResult(
                check_name=n, passed=bool(c.passed), description=c.description,
                severity=dg.AssetCheckSeverity.ERROR if c.severity == "ERROR" else dg.AssetCheckSeverity.WARN,
                metadata={"details": dg.MetadataValue.json(to_jsonable(c.metadata)),
                          "examples": dg.MetadataValue.md(pd.DataFrame(examples).head(10).to_markdown(index=False)
                                                          if examples else "none")})

    return join_report
