"""Relational (hierarchical) spaces of parent tables, built from the dataset's topology.

Which tables get one is the topology's answer (``TablePlan.has_relational_space``). The children's
spaces are the ``<child>/embedding_space`` assets, reused as they are; the relational space adds
the learned aggregation of each parent's child rows.
"""

from __future__ import annotations

import pandas as pd

from featrix_model import EmbeddingSpace
from featrix_model.relational import RelationalSpace
from featrix_model.relationships import Relationship
from featrix_pipeline.columns import analysis_of
from featrix_pipeline.settings import FitSettings
from featrix_pipeline.fingerprint import digest, frame_fingerprint, model_code_version
from featrix_pipeline.reuse import ArtifactStore, reused
from featrix_pipeline.spaces import space_summary, trained
from featrix_pipeline.topology import Topology


def link_relationships(topology: Topology, parent: str) -> list[Relationship]:
    """The parent's child relationships for ``featrix_model``, unnamed: the model names each link
    after its child table (columns ``flights.children``, ``flights.count``)."""
    return [r.to_model(name="") for r in topology[parent].children]


def _row_ids(topology: Topology, tables) -> dict[str, list[str]]:
    """The tables' row ids, left out of their spaces."""
    return {t: [topology[t].row_id] for t in tables if topology[t].row_id}


def _hidden_child_columns(topology: Topology, parent: str, frames: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    """A child denormalised with its own parent (a lookup back up the tree) would hand the parent's
    columns to the children's embeddings: those columns are hidden when the children are encoded."""
    plan = topology[parent]
    return {c: [col for lk in topology[c].lookups if lk.parent == parent for col in frames[c].columns
                if str(col).startswith(f"{lk.lookup_prefix}.")] for c in plan.child_tables}


def train_relational_space(topology: Topology, parent: str, rows: dict[str, pd.DataFrame],
                           child_spaces: dict[str, dict], store: ArtifactStore, settings: FitSettings,
                           profile: dict | None = None, run_id: str = "") -> dict:
    """The parent's relational space fitted on the filtered parent and child tables (``rows``: those and
    their lookup tables' filtered rows), reusing the children's spaces (``child_spaces``: their asset
    summaries); ``profile``: the parent's profile asset (its columns are not profiled again). Saved and
    summarised — or reused when the same code, spec, settings, rows and child spaces made it before."""
    plan = topology[parent]
    frames = topology.model_tables(parent, rows)
    key = digest({"code": model_code_version(), "spec": plan.describe(), "settings": settings.training(),
                  "data": {t: frame_fingerprint(f) for t, f in frames.items()},
                  "child_spaces": {t: s["key"] for t, s in child_spaces.items()}})
    if (found := store.find(key)) is not None:
        return reused(found)
    tmp = store.start(key)
    rels = link_relationships(topology, parent)
    child_time = {c: topology[c].spec.time_column for c in plan.child_tables if topology[c].spec.time_column}
    rs = RelationalSpace.fit(frames, rels, parent,
                             child_spaces={t: EmbeddingSpace.load(s["path"]) for t, s in child_spaces.items()},
                             time_budget_s=settings.time_budget_s, seed=settings.seed, child_time=child_time,
                             cutoff=plan.spec.cutoff_column, child_hide=_hidden_child_columns(topology, parent, frames),
                             primary_keys=_row_ids(topology, frames), output_dir=tmp, threads=settings.threads,
                             analysis=analysis_of(profile, frames[parent].columns) if profile else None)
    rs.save(tmp)
    summary = store.publish(key, tmp, {**space_summary(rs, parent, len(frames[parent]), tmp),
                                       "links": rs.report()["links"], **trained(key, run_id, rs.decisions)})
    store.prune(protect={key})
    return summary
