"""Per-table assets: ``<table>/raw`` → ``<table>/profile`` → ``<table>/filtered``."""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.metadata import column_lineage, table_metadata
from assets.sensors import SCHEMA
from assets.versions import content_output, quality_code_version
from featrix_pipeline.columns import decide_columns, filter_table, profile_table
from featrix_pipeline.expectations import validate_table
from featrix_pipeline.report import refresh_report
from featrix_pipeline.resources import WarehouseResource
from featrix_pipeline.spec import DatasetSpec, SpecError, check_columns
from featrix_pipeline.topology import TablePlan, Topology
from featrix_pipeline.warehouse import WarehouseError, warehouse_kind

PK_EXPECTATIONS = ("expect_column_values_to_not_be_null", "expect_column_values_to_be_unique",
                   "expect_compound_columns_to_be_unique")


def build_table_assets(topology: Topology, store_dir: Path, reports_dir: Path) -> list:
    return [a for plan in topology.tables.values() for a in _table_assets(topology.spec, plan, store_dir, reports_dir)]


def _table_assets(spec: DatasetSpec, plan: TablePlan, store_dir: Path, reports_dir: Path) -> list:
    table, t = plan.name, plan.spec
    source = t.source
    raw_key, profile_key, filtered_key = (list(plan.key(s)) for s in ("raw", "profile", "filtered"))
    code_version = quality_code_version(plan.describe())

    @dg.asset(key=raw_key, group_name=table, kinds={warehouse_kind(spec.warehouse_url), "pandas"},
              description=f"Snapshot of `{source}` read from the warehouse, ordered by its primary key. {t.description}")
    def raw(warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
        wh = warehouse.get()
        try:
            check_columns(spec, {table: wh.columns(source)}, only=table)
            schema = wh.sql_schema(source)
            df = wh.read_table(source, order_by=list(t.primary_key), limit=t.row_limit)
        except (SpecError, WarehouseError) as e:
            raise dg.Failure(description=str(e)) from None
        return content_output(df, {**table_metadata(df), SCHEMA: dg.MetadataValue.json(schema)})

    suite_checks = [
        dg.AssetCheckSpec("primary_key", asset=profile_key, blocking=True,
                          description=f"Great Expectations: primary key ({', '.join(t.primary_key)}) is present and unique."),
        dg.AssetCheckSpec("expectation_suite", asset=profile_key,
                          description="Great Expectations suite: foreign-key null ratios and value types from the profile."),
    ]

    @dg.asset(key=profile_key, group_name=table, ins={"raw": dg.AssetIn(raw_key)},
              check_specs=suite_checks, kinds={"pandas"}, code_version=code_version,
              description="Per column: detected semantic type (from values), null and unique ratios, examples and "
                          "a usefulness verdict (all-null, constant, random identifier), plus the table's Great "
                          "Expectations suite.")
    def profile(context: dg.AssetExecutionContext, raw: pd.DataFrame):
        prof = profile_table(spec, table, raw)
        outcomes = [o.to_dict() for o in validate_table(spec, table, raw, prof)]
        prof["expectations"] = outcomes
        yield content_output(prof, {"dagster/row_count": len(raw), "profile": dg.MetadataValue.md(_profile_md(prof))})
        _, md_path, _ = refresh_report(spec, store_dir, reports_dir, context.run_id)
        context.log.info(f"Data-quality report: {md_path} (and report.html beside it)")
        pk = [o for o in outcomes if o["expectation"] in PK_EXPECTATIONS and o["column"] in
              (",".join(t.primary_key), *t.primary_key)]
        rest = [o for o in outcomes if o not in pk]
        for check, group, severity in (("primary_key", pk, dg.AssetCheckSeverity.ERROR),
                                       ("expectation_suite", rest, dg.AssetCheckSeverity.WARN)):
            failed = [o for o in group if not o["success"]]
            yield dg.AssetCheckResult(
                check_name=check, passed=not failed, severity=severity,
                description="; ".join(f"{o['why']}: {o['unexpected_count']:,} rows fail" for o in failed) or
                            f"{len(group)} expectations passed",
                metadata={"failed": dg.MetadataValue.json(failed), "expectations_run": len(group),
                          "examples": dg.MetadataValue.md(_examples_md(failed))})

    @dg.asset(key=filtered_key, group_name=table, kinds={"pandas"}, code_version=code_version,
              ins={"raw": dg.AssetIn(raw_key), "profile": dg.AssetIn(profile_key)},
              description="The table minus useless columns (all-null, constant, random identifiers), each with "
                          "its reason. Keys stay for joining. Rows are never dropped.")
    def filtered(context: dg.AssetExecutionContext, raw: pd.DataFrame, profile: dict) -> dg.Output[pd.DataFrame]:
        decisions = decide_columns(spec, table, profile)
        df = filter_table(raw, decisions)
        excluded = {c: d["reason"] for c, d in decisions.items() if not d["keep"]}
        for why in excluded.values():
            context.log.warning(f"[{table}] {why}")
        assert len(df) == len(raw)
        return content_output(df, {
            **table_metadata(df), "dagster/column_lineage": column_lineage(df.columns, lambda c: (raw_key, c)),
            "excluded_columns": dg.MetadataValue.json(excluded),
            "key_columns": sorted(c for c, d in decisions.items() if d["role"] == "key"),
            "decisions": dg.MetadataValue.md(_decisions_md(decisions)),
        })

    return [raw, profile, filtered]


def _examples_md(failed: list[dict]) -> str:
    if not failed:
        return "No failing expectations."
    parts = []
    for o in failed:
        rows = pd.DataFrame(o["examples"]).head(5)
        parts.append(f"**{o['why']}** ({o['unexpected_count']:,} rows)\n\n" +
                     (rows.to_markdown(index=False) if len(rows) else "(no example rows)"))
    return "\n\n".join(parts)


def _profile_md(prof: dict) -> str:
    rows = [{"column": c, "type": p["semantic_type"], "why": p["type_reason"], "role": p["role"],
             "null": f"{p['null_ratio']:.1%}", "unique": f"{p['unique_ratio']:.1%}",
             "examples": ", ".join(str(x)[:30] for x in p["examples"][:3])}
            for c, p in prof["columns"].items()]
    return pd.DataFrame(rows).to_markdown(index=False)


def _decisions_md(decisions: dict[str, dict]) -> str:
    rows = [{"column": c, "keep": "yes" if d["keep"] else "no", "role": d["role"],
             "score": "" if d["score"] is None else round(d["score"], 2), "reason": d["reason"]}
            for c, d in decisions.items()]
    return pd.DataFrame(rows).to_markdown(index=False)
