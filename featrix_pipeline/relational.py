"""Relational (hierarchical) spaces of parent tables, built from the dataset spec (spec §1.3, §19).

A table gets one when its spec says ``relational_space: true``, or by default (``auto``) when a
target sits on it and it has child tables — tables with a many-to-one relationship into it — that
have embedding spaces. The children's spaces are the ``<child>/embedding_space`` assets, reused as
they are; the relational space adds the learned aggregation of each parent's child rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from featrix_model.relational import Relationship as ModelRelationship
from featrix_model.relational import denormalise
from featrix_model.relational import RelationalSpace
from featrix_model.space import EmbeddingSpace
from featrix_pipeline.spec import DatasetSpec, Relationship


def lookups(spec: DatasetSpec, table: str) -> list[Relationship]:
    """Relationships declared ``lookup: true`` whose many side is ``table`` (dimension tables to denormalise)."""
    return [r for r in spec.relationships if r.lookup and r.child == table and r.parent != table]


def with_lookup_tables(spec: DatasetSpec, tables: list[str]) -> list[str]:
    """``tables`` and the lookup tables their rows are denormalised with, each once."""
    return list(dict.fromkeys([*tables, *(r.parent for t in tables for r in lookups(spec, t))]))


def model_frame(spec: DatasetSpec, table: str, frame: pd.DataFrame, filtered: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``frame`` (rows of ``table``) with its lookups' columns joined in as ``<prefix>.<column>``: what
    every model of the table sees. ``filtered``: the lookup tables' filtered rows. Row count and order
    never change (a many-to-one join; a lookup with repeated keys is refused)."""
    out = frame
    for r in lookups(spec, table):
        if r.parent not in filtered:
            raise KeyError(f"rows of '{table}' are joined with lookup table '{r.parent}' ({r.condition}), "
                           "whose rows were not given.")
        rows = filtered[r.parent]
        if r.lookup_columns:
            rows = rows[[*r.parent_keys, *[c for c in r.lookup_columns if c in rows.columns]]]
        rel = ModelRelationship(r.child, r.parent, r.child_keys, r.parent_keys, r.lookup_prefix)
        out = denormalise(out, [(rel, r.lookup_prefix)], {r.parent: rows})
    return out


def child_relationships(spec: DatasetSpec, parent: str) -> list[Relationship]:
    """Relationships whose one side is ``parent`` and whose many side has an embedding space (a lookup
    is still a parent: airlines ← flights can be aggregated like planes ← flights)."""
    return [r for r in spec.relationships if r.parent == parent and r.child != parent
            and spec.tables[r.child].embedding_space]


def relational_parents(spec: DatasetSpec) -> dict[str, list[Relationship]]:
    """{parent table: its child relationships} for every table that gets a relational space."""
    out = {}
    for name, t in spec.tables.items():
        rels = child_relationships(spec, name)
        wanted = t.relational_space is True or (t.relational_space == "auto" and any(g.table == name for g in spec.targets))
        if wanted and rels and t.embedding_space:
            out[name] = rels
    return out


def model_relationships(spec: DatasetSpec, parent: str) -> list[ModelRelationship]:
    """The parent's child relationships for ``featrix_model``; a link is named after its child table
    (columns ``flights.children``, ``flights.count``) unless one child table links twice."""
    rels = child_relationships(spec, parent)
    children = [r.child for r in rels]
    return [ModelRelationship(r.child, r.parent, r.child_keys, r.parent_keys,
                              r.child if children.count(r.child) == 1 else r.name, "many_to_one") for r in rels]


def _keys(spec: DatasetSpec, tables) -> dict[str, list[str]]:
    return {t: list(spec.tables[t].primary_key) for t in tables if len(spec.tables[t].primary_key) == 1}


def train_relational_space(spec: DatasetSpec, parent: str, frames: dict[str, pd.DataFrame],
                           child_space_paths: dict[str, str], out_dir: Path, *, time_budget_s: float | None = None,
                           seed: int = 0, threads: int = 1) -> tuple[RelationalSpace, dict]:
    """Fit on the filtered parent and child tables, reusing the children's spaces; save and summarise."""
    rels = model_relationships(spec, parent)
    frames = relational_tables(spec, parent, frames)
    child_spaces = {t: EmbeddingSpace.load(p) for t, p in child_space_paths.items()}
    child_time = {r.child: spec.tables[r.child].time_column for r in rels if spec.tables[r.child].time_column}
    # a child denormalised with its own parent (a lookup back up the tree) would hand the parent's columns
    # to the children's embeddings: those columns are hidden when the children are encoded
    hide = {r.child: [c for lk in lookups(spec, r.child) if lk.parent == parent for c in frames[r.child].columns
                      if str(c).startswith(f"{lk.lookup_prefix}.")] for r in rels}
    rs = RelationalSpace.fit(frames, rels, parent, child_spaces=child_spaces, time_budget_s=time_budget_s, seed=seed,
                             child_time=child_time, cutoff=spec.tables[parent].cutoff_column, child_hide=hide,
                             primary_keys=_keys(spec, frames), output_dir=out_dir, threads=threads)
    rs.save(out_dir)
    last = rs.timeline[-1] if rs.timeline else {}
    summary = {"path": str(out_dir), "table": parent, "rows": int(len(frames[parent])), "d_model": rs.d_model,
               "columns": rs.plan.columns, "links": rs.report()["links"],
               "excluded": {c: i["reason"] for c, i in rs.plan.info.items() if i["excluded"]},
               "config": {k: v for k, v in rs.config.to_dict().items() if k != "reasons"},
               "reasons": rs.config.reasons, "epochs_run": len(rs.timeline), "decisions": rs.decisions,
               "collapse": last.get("collapse", {}), "fit_seconds": rs.timeline_["metadata"].get("fit_seconds"),
               "figures": {k: str(v) for k, v in {"timeline": out_dir / "training_timeline.png",
                                                  "mutual_information": out_dir / "mutual_information.png"}.items()
                           if v.exists()}}
    return rs, summary


def child_tables(spec: DatasetSpec, parent: str) -> list[str]:
    return list(dict.fromkeys(r.child for r in child_relationships(spec, parent)))


def relational_tables(spec: DatasetSpec, parent: str, filtered: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The parent's and its children's rows as the relational space sees them (lookups joined in);
    ``filtered`` holds those tables' and their lookup tables' filtered rows."""
    return {t: model_frame(spec, t, filtered[t], filtered) for t in [parent, *child_tables(spec, parent)]}
