"""Relational (hierarchical) spaces: ``<child>/embedding_space`` (+ the child's join report) →
``<parent>/relational_space``: children aggregated per parent row, no row explosion."""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.automation import when_rebuilt
from assets.checks import collapse_check, collapse_spec
from assets.inputs import asset_in, rows_in, rows_of
from assets.metadata import row_metadata, space_metadata
from assets.pools import TRAINING_POOL, training_tags
from assets.progress import progress_to_run_log
from assets.versions import model_code_version, versioned_output
from featrix_pipeline.relational import train_relational_space
from featrix_pipeline.reuse import ArtifactStore
from featrix_pipeline.resources import ModelSettings
from featrix_pipeline.topology import TablePlan, Topology

LINK_COLUMNS = ("relationship", "children", "null_key", "unmatched_key", "parents_without_children", "median_children",
                "max_children", "parents_capped", "cap", "after_cutoff", "unknown_time")


def build_relational_assets(topology: Topology, store_dir: Path) -> list:
    return [_relational_asset(topology, plan, store_dir) for plan in topology.relational]


def _relational_asset(topology: Topology, plan: TablePlan, store_dir: Path):
    parent, key, children = plan.name, plan.key("relational_space"), plan.child_tables
    store = ArtifactStore(store_dir.joinpath(*key), topology.spec.retention)
    ins = {**rows_in(topology, (parent, *topology.reads(parent))), "profile": asset_in(plan.key("profile")),
           **{f"{c}_space": asset_in(topology[c].key("embedding_space")) for c in children},
           **{f"{r.name}_join": asset_in(topology.join_key(r)) for r in plan.children}}  # their blocking checks gate this

    @dg.asset(key=list(key), group_name=parent, kinds={"pytorch"}, ins=ins, check_specs=[collapse_spec(key)],
              pool=TRAINING_POOL, op_tags=training_tags(topology, key),
              code_version=model_code_version(plan),
              automation_condition=when_rebuilt([topology[c].key("embedding_space") for c in children]),
              description=f"Hierarchical embedding space of `{parent}`: each row with its "
                          f"{', '.join(f'`{c}`' for c in children)} rows encoded by their own spaces and pooled by "
                          "attention with learned queries; every parent row seen once per epoch.")
    def relational_space(context: dg.AssetExecutionContext, model_settings: ModelSettings, **inputs):
        with progress_to_run_log(context, f"{parent} relational"):
            summary = train_relational_space(topology, parent, rows_of(inputs),
                                             {c: inputs[f"{c}_space"] for c in children}, store,
                                             model_settings.fit_settings(), profile=inputs["profile"],
                                             run_id=context.run_id)
        for w in summary.get("warnings", []):
            context.log.warning(f"[{parent}] {w}")
        for d in summary["decisions"]:
            if d not in summary.get("warnings", []):
                context.log.info(f"[{parent}] {d}")
        orphans = {r.name: {"orphan_rows": inputs[f"{r.name}_join"]["report"]["orphan_rows"],
                            "examples": inputs[f"{r.name}_join"]["report"]["orphan_examples"][:5]} for r in plan.children}
        links = pd.DataFrame([{"link": k, **{c: v[c] for c in LINK_COLUMNS}} for k, v in summary["links"].items()])
        yield versioned_output(summary, {
            **space_metadata(summary), **row_metadata(summary.get("row_accounting")),
            "children": dg.MetadataValue.md(links.to_markdown(index=False)),
            "child_row_accounting": dg.MetadataValue.json(summary.get("child_row_accounting") or {}),
            "orphans": dg.MetadataValue.json(summary.get("orphans") or {}),
            "orphan_warnings": dg.MetadataValue.md("\n\n".join(summary.get("warnings") or []) or "none"),
            "orphans_in_join_reports": dg.MetadataValue.json(orphans)})
        yield collapse_check(summary)

    return relational_space
