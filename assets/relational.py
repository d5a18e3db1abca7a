"""Relational (hierarchical) spaces: ``<child>/embedding_space`` (+ the child's join report) →
``<parent>/relational_space`` (spec §1.3: children aggregated per parent row, no row explosion)."""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.spaces import COLLAPSE_CHECK, collapse_check, config_table, rows_in, rows_of
from featrix_pipeline.relational import child_tables, relational_parents, train_relational_space, with_lookup_tables
from featrix_pipeline.resources import ModelSettings
from featrix_pipeline.spec import DatasetSpec


def build_relational_assets(spec: DatasetSpec, store_dir: Path) -> list:
    return [_relational_asset(spec, parent, rels, store_dir) for parent, rels in relational_parents(spec).items()]


def _relational_asset(spec: DatasetSpec, parent: str, rels: list, store_dir: Path):
    children = child_tables(spec, parent)
    out_dir = store_dir / parent / "relational_space"
    ins = {**rows_in(with_lookup_tables(spec, [parent, *children])),
           **{f"{c}_space": dg.AssetIn([c, "embedding_space"]) for c in children},
           **{f"{r.name}_join": dg.AssetIn([r.name, "join_report"]) for r in rels}}  # their blocking checks gate this

    @dg.asset(key=[parent, "relational_space"], group_name=parent, kinds={"pytorch"}, ins=ins,
              check_specs=[dg.AssetCheckSpec("no_embedding_collapse", asset=[parent, "relational_space"], blocking=True,
                                             description=COLLAPSE_CHECK)],
              description=f"Hierarchical embedding space of `{parent}`: each row with its "
                          f"{', '.join(f'`{c}`' for c in children)} rows encoded by their own spaces and pooled by "
                          "attention with learned queries; every parent row seen once per epoch.")
    def relational_space(context: dg.AssetExecutionContext, model_settings: ModelSettings, **inputs):
        rs, summary = train_relational_space(
            spec, parent, rows_of(inputs), {c: inputs[f"{c}_space"]["path"] for c in children}, out_dir,
            time_budget_s=model_settings.time_budget_s, seed=model_settings.seed, threads=model_settings.threads)
        for d in rs.decisions:
            context.log.info(f"[{parent}] {d}")
        orphans = {r.name: {"orphan_rows": inputs[f"{r.name}_join"]["report"]["orphan_rows"],
                            "examples": inputs[f"{r.name}_join"]["report"]["orphan_examples"][:5]} for r in rels}
        links = pd.DataFrame([{"link": k, **{c: v[c] for c in (
            "relationship", "children", "null_key", "unmatched_key", "parents_without_children", "median_children",
            "max_children", "parents_capped", "cap", "after_cutoff", "unknown_time")}} for k, v in summary["links"].items()])
        yield dg.Output(summary, metadata={
            "path": dg.MetadataValue.path(summary["path"]), "d_model": summary["d_model"],
            "epochs_run": summary["epochs_run"], "fit_seconds": summary["fit_seconds"],
            "children": dg.MetadataValue.md(links.to_markdown(index=False)),
            "orphans_in_join_reports": dg.MetadataValue.json(orphans),
            "columns": dg.MetadataValue.json(summary["columns"]),
            "config": config_table(summary),
            **{f"figure_{k}": dg.MetadataValue.path(v) for k, v in summary["figures"].items()}})
        yield collapse_check(summary)

    return relational_space
