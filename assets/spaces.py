"""Per-table model assets: ``<table>/embedding_space`` → ``<table>/row_embeddings``."""

from pathlib import Path

import dagster as dg
import pandas as pd

from featrix_pipeline.relational import lookups
from featrix_pipeline.resources import ModelSettings
from featrix_pipeline.spaces import row_embeddings, train_space
from featrix_pipeline.spec import DatasetSpec


COLLAPSE_CHECK = "Spec §11: embedding std > 0.01, range > 0.1, mean pairwise distance > 0.1."


def collapse_check(summary: dict) -> dg.AssetCheckResult:
    """The blocking ``no_embedding_collapse`` result from a space's final collapse metrics."""
    c = summary["collapse"]
    return dg.AssetCheckResult(
        check_name="no_embedding_collapse", passed=not c.get("collapsed", True), severity=dg.AssetCheckSeverity.ERROR,
        description=(f"embedding std {c.get('embedding_std', 0):.4f}, range {c.get('embedding_range', 0):.3f}, "
                     f"mean pairwise distance {c.get('avg_pairwise_distance', 0):.3f}"),
        metadata={k: float(v) for k, v in c.items() if k != "collapsed"})


def config_table(summary: dict) -> dg.MetadataValue:
    """Every training setting with its value and the reason it was chosen."""
    return dg.MetadataValue.md(pd.DataFrame(
        [{"setting": k, "value": summary["config"].get(k), "why": v} for k, v in summary["reasons"].items()]
    ).to_markdown(index=False))


def rows_in(tables: list[str]) -> dict[str, dg.AssetIn]:
    """Inputs ``<table>_rows`` ← ``<table>/filtered`` for the other tables a model reads (lookups, children)."""
    return {f"{t}_rows": dg.AssetIn([t, "filtered"]) for t in tables}


def rows_of(inputs: dict) -> dict[str, pd.DataFrame]:
    return {k[: -len("_rows")]: v for k, v in inputs.items() if k.endswith("_rows")}


def build_space_assets(spec: DatasetSpec, store_dir: Path) -> list:
    out = []
    for table, t in spec.tables.items():
        if t.embedding_space:
            out += _space_assets(spec, table, store_dir)
    return out


def _space_assets(spec: DatasetSpec, table: str, store_dir: Path) -> list:
    space_dir = store_dir / table / "embedding_space"
    lookup_ins = rows_in([r.parent for r in lookups(spec, table)])

    @dg.asset(key=[table, "embedding_space"], group_name=table, kinds={"pytorch"},
              ins={"filtered": dg.AssetIn([table, "filtered"]), **lookup_ins},
              check_specs=[dg.AssetCheckSpec("no_embedding_collapse", asset=[table, "embedding_space"], blocking=True,
                                             description=COLLAPSE_CHECK)],
              description=f"Self-supervised embedding space of `{table}` (spec Part II): every automatic choice with "
                          "its reason, final losses, top mutual-information pairs and training figures.")
    def embedding_space(context: dg.AssetExecutionContext, filtered: pd.DataFrame, model_settings: ModelSettings,
                        **lookup_rows):
        es, summary = train_space(spec, table, filtered, space_dir, time_budget_s=model_settings.time_budget_s,
                                  seed=model_settings.seed, threads=model_settings.threads, rows=rows_of(lookup_rows))
        for d in es.decisions:
            context.log.info(f"[{table}] {d}")
        yield dg.Output(summary, metadata={
            "path": dg.MetadataValue.path(summary["path"]), "d_model": summary["d_model"],
            "epochs_run": summary["epochs_run"], "fit_seconds": summary["fit_seconds"],
            "final_losses": dg.MetadataValue.json(summary["final"]),
            "config": config_table(summary),
            "top_mi_pairs": dg.MetadataValue.md(pd.DataFrame(summary["top_mi_pairs"]).to_markdown(index=False)),
            "excluded_columns": dg.MetadataValue.json({**summary["left_out"], **summary["excluded"]}),
            **{f"figure_{k}": dg.MetadataValue.path(v) for k, v in summary["figures"].items()},
        })
        yield collapse_check(summary)

    @dg.asset(key=[table, "row_embeddings"], group_name=table, kinds={"parquet"},
              ins={"filtered": dg.AssetIn([table, "filtered"]), "space": dg.AssetIn([table, "embedding_space"]),
                   **lookup_ins},
              description=f"One embedding per `{table}` row: primary key, emb_0..emb_d, short 3D vector.")
    def row_embeddings_asset(filtered: pd.DataFrame, space: dict, **lookup_rows) -> dg.Output[pd.DataFrame]:
        out = row_embeddings(spec, table, filtered, space["path"], rows_of(lookup_rows))
        return dg.Output(out, metadata={"dagster/row_count": len(out), "d_model": space["d_model"]})

    return [embedding_space, row_embeddings_asset]
