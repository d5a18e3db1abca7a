"""Per-table model assets: ``<table>/embedding_space`` → ``<table>/row_embeddings``."""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.automation import when_rebuilt
from assets.checks import collapse_check, collapse_spec
from assets.inputs import asset_in, rows_in, rows_of
from assets.metadata import column_lineage, row_metadata, space_metadata
from assets.pools import TRAINING_POOL, training_tags
from assets.progress import progress_to_run_log
from assets.versions import model_code_version, versioned_output
from featrix_pipeline.resources import ModelSettings
from featrix_pipeline.reuse import ArtifactStore
from featrix_pipeline.spaces import row_embeddings, train_space
from featrix_pipeline.topology import TablePlan, Topology


def build_space_assets(topology: Topology, store_dir: Path) -> list:
    return [a for plan in topology.tables.values() if plan.has_space for a in _space_assets(topology, plan, store_dir)]


def _space_assets(topology: Topology, plan: TablePlan, store_dir: Path) -> list:
    table, key = plan.name, plan.key("embedding_space")
    store = ArtifactStore(store_dir.joinpath(*key), topology.spec.retention)
    lookup_ins = rows_in(topology, plan.lookup_tables)

    @dg.asset(key=list(key), group_name=table, kinds={"pytorch"}, code_version=model_code_version(plan),
              pool=TRAINING_POOL, op_tags=training_tags(topology, key),
              automation_condition=when_rebuilt(),
              ins={"filtered": asset_in(plan.key("filtered")), "profile": asset_in(plan.key("profile")), **lookup_ins},
              deps=[dg.AssetKey(list(topology.join_key(r))) for r in plan.lookups],  # their blocking checks gate this
              check_specs=[collapse_spec(key)],
              description=f"Self-supervised embedding space of `{table}` (its lookups joined in): every automatic "
                          "choice with its reason, final losses, top mutual-information pairs and training figures.")
    def embedding_space(context: dg.AssetExecutionContext, filtered: pd.DataFrame, profile: dict,
                        model_settings: ModelSettings, **lookup_rows):
        with progress_to_run_log(context, table):
            summary = train_space(plan, filtered, profile, store, model_settings.fit_settings(), context.run_id,
                                  rows=rows_of(lookup_rows))
        for d in summary["decisions"]:
            context.log.info(f"[{table}] {d}")
        def source(column: str):
            table_name, col = plan.column_source(column)
            return topology[table_name].key("filtered"), col

        yield versioned_output(summary, {
            **space_metadata(summary), **row_metadata(summary.get("row_accounting")),
            "final_losses": dg.MetadataValue.json(summary["final"]),
            "dagster/column_lineage": column_lineage(summary["columns"], source),
            "dagster/column_schema": dg.TableSchema(columns=[  # the UI lists these, each with its lineage
                dg.TableColumn(name=str(c), type="input column", description=_source_text(source(c)))
                for c in summary["columns"]]),
            "top_mi_pairs": dg.MetadataValue.md(pd.DataFrame(summary["top_mi_pairs"]).to_markdown(index=False)),
            "excluded_columns": dg.MetadataValue.json({**summary["left_out"], **summary["excluded"]})})
        yield collapse_check(summary)

    @dg.asset(key=list(plan.key("row_embeddings")), group_name=table, kinds={"parquet"},
              automation_condition=when_rebuilt([key]),
              ins={"filtered": asset_in(plan.key("filtered")), "space": asset_in(key), **lookup_ins},
              description=f"One embedding per `{table}` row: primary key, emb_0..emb_d, short 3D vector. Rows the "
                          "space was trained on keep their training embeddings; only new and changed rows are encoded.")
    def row_embeddings_asset(filtered: pd.DataFrame, space: dict, model_settings: ModelSettings,
                             **lookup_rows) -> dg.Output[pd.DataFrame]:
        out = row_embeddings(plan, filtered, space, model_settings.fit_settings(), rows_of(lookup_rows))
        return dg.Output(out, metadata={"dagster/row_count": len(out), "d_model": space["d_model"],
                                        "rows_encoded": out.attrs.get("rows_encoded", len(out)),
                                        **row_metadata(out.attrs.get("row_accounting"))})

    return [embedding_space, row_embeddings_asset]


def _source_text(source: tuple) -> str:
    key, column = source
    return f"read as {'/'.join(key)} column {column}"
