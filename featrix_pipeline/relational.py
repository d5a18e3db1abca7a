"""Relational (hierarchical) spaces of parent tables, built from the dataset's topology.

Which tables get one is the topology's answer (``TablePlan.has_relational_space``). The children's
spaces are the ``<child>/embedding_space`` assets, reused as they are; the relational space adds
the learned aggregation of each parent's child rows.

Before anything is fitted, each child relationship's keys are matched here (``key_match``): a
relationship none of whose keyed child rows finds a parent — ``'N1 '`` against ``'N1'``, or the
codes of another system — is warned of with example keys of both sides (``all_orphans_warning``),
because the model would fit on it quietly and learn nothing from the children (keys whose types
can never match, ``42`` against ``'42'``, are warned of too, and then refused by the model). After the fit, every child
row is accounted for (``child_accounting``): pooled into its parent's row, or left out with a reason.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from featrix_model import EmbeddingSpace
from featrix_model.keys import comparable, compatible, key_family
from featrix_model.relational import RelationalSpace
from featrix_model.space import use_threads
from featrix_model.relationships import Relationship
from featrix_pipeline import accounting
from featrix_pipeline.columns import analysis_of
from featrix_pipeline.settings import FitSettings
from featrix_pipeline.fingerprint import digest, frame_fingerprint, model_code_version
from featrix_pipeline.privacy import Masker
from featrix_pipeline.reuse import ArtifactStore, reused
from featrix_pipeline.evaluation import SPLIT_SCHEME
from featrix_pipeline.spaces import evaluation_rows, space_summary, trained
from featrix_pipeline.spec import RelationshipSpec
from featrix_pipeline.topology import Topology

log = logging.getLogger("featrix_pipeline")
EXAMPLES = 5  # example keys shown on each side of a relationship whose children find no parent


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
    summarised — or reused when the same code, spec, settings, rows and child spaces made it before.
    Child rows that find no parent are counted first (``orphans``); a relationship none of whose child
    rows finds a parent is warned of (``warnings``) before anything is fitted."""
    use_threads(settings.threads)  # before anything encodes: a step process starts at torch's default count
    plan = topology[parent]
    frames = topology.model_tables(parent, rows)
    orphans = {r.name: key_match(frames[r.child], frames[parent], r) for r in plan.children}
    warnings = [w for r in plan.children if (w := all_orphans_warning(r, orphans[r.name]))]
    for w in warnings:
        log.warning(w)
    checked = {"orphans": orphans, "warnings": warnings}
    held = evaluation_rows(plan, frames[parent].reset_index(drop=True), settings.seed)
    key = digest({"code": model_code_version(), "spec": plan.describe(), "settings": settings.training(),
                  "data": {t: frame_fingerprint(f) for t, f in frames.items()},
                  "child_spaces": {t: s["key"] for t, s in child_spaces.items()},
                  "evaluation_rows": SPLIT_SCHEME if held.any() else None})
    if (found := store.find(key)) is not None:
        return {**reused(found), **checked}
    tmp = store.start(key)
    rels = link_relationships(topology, parent)
    child_time = {c: topology[c].spec.time_column for c in plan.child_tables if topology[c].spec.time_column}
    rs = RelationalSpace.fit(frames, rels, parent, train_rows=~held,
                             child_spaces={t: EmbeddingSpace.load(s["path"]) for t, s in child_spaces.items()},
                             time_budget_s=settings.time_budget_s, seed=settings.seed, child_time=child_time,
                             cutoff=plan.spec.cutoff_column, child_hide=_hidden_child_columns(topology, parent, frames),
                             primary_keys=_row_ids(topology, frames), output_dir=tmp, threads=settings.threads,
                             checkpoint_dir=store.checkpoints(key),  # the key covers the child spaces' versions
                             analysis=analysis_of(profile, frames[parent].columns) if profile else None)
    rs.save(tmp)
    links = rs.report()["links"]
    summary = store.publish(key, tmp, {**space_summary(rs, parent, len(frames[parent]), tmp, int(held.sum())), "links": links,
                                       "child_row_accounting": child_accounting(links, frames), **checked,
                                       **trained(key, run_id, [*warnings, *rs.decisions])})
    store.prune(protect={key})
    return summary


def child_accounting(links: dict[str, dict], frames: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """Per child link, where its child rows went: pooled into a parent's row, or left out (null key,
    no parent with that key, dated after the cutoff, undated under a cutoff)."""
    out = {}
    for name, rep in links.items():
        excluded = {accounting.CHILD_NULL_KEY: rep["null_key"], accounting.CHILD_NO_PARENT: rep["unmatched_key"],
                    accounting.CHILD_AFTER_CUTOFF: rep["after_cutoff"], accounting.CHILD_NO_TIME: rep["unknown_time"]}
        used = rep["children"] - sum(excluded.values())
        out[name] = accounting.account(len(frames[rep["child_table"]]), {accounting.CHILD_USED: used}, excluded,
                                       what=f"child rows of {rep['relationship']}")
    return out


def key_match(child: pd.DataFrame, parent: pd.DataFrame, rel: RelationshipSpec) -> dict:
    """How the child rows of ``rel`` meet the parent rows: counts of rows with a null key, orphans (a
    key no parent row has) and matched rows, the key types of both sides and example keys (the most
    frequent orphan keys; the parent's first keys), shown as Python literals so ``'42'`` differs from
    ``42`` and ``'N1 '`` from ``'N1'``. Keys are compared as the join compares them (``featrix_model.keys``)."""
    ck, pk = list(rel.child_keys), list(rel.parent_keys)
    fams = [(key_family(child[c]), key_family(parent[p])) for c, p in zip(ck, pk)]
    null = child[ck].isna().any(axis=1).to_numpy()
    found = np.zeros(len(child), dtype=bool)
    if all(compatible(a, b) for a, b in fams):
        names = [f"k{i}" for i in range(len(ck))]
        left = pd.DataFrame({n: comparable(child[c], a, b) for n, c, (a, b) in zip(names, ck, fams)})
        keyed = parent[parent[pk].notna().all(axis=1)]
        right = pd.DataFrame({n: comparable(keyed[p], b, a) for n, p, (a, b) in zip(names, pk, fams)})
        right = right.drop_duplicates().assign(_hit=True)
        found = left.merge(right, how="left", on=names)["_hit"].notna().to_numpy() & ~null
    orphan = ~null & ~found
    orphan_keys = _tuples(child.loc[orphan, ck])
    counts = orphan_keys.value_counts(sort=False)  # in order of first appearance, then most frequent first
    counts = counts.iloc[np.argsort(-counts.to_numpy(), kind="stable")]
    parent_keys = _tuples(parent[pk].dropna().drop_duplicates().head(EXAMPLES))
    child_mask, parent_mask = Masker.of(child, columns=ck), Masker.of(parent, columns=pk)  # keys that are emails, ...
    return {"relationship": rel.name, "condition": rel.condition, "child_table": rel.child, "parent_table": rel.parent,
            "child_keys": ck, "parent_keys": pk, "child_rows": int(len(child)), "null_key": int(null.sum()),
            "orphans": int(orphan.sum()), "matched": int(found.sum()),
            "child_key_types": [f"{a} ({child[c].dtype})" for c, (a, _) in zip(ck, fams)],
            "parent_key_types": [f"{b} ({parent[p].dtype})" for p, (_, b) in zip(pk, fams)],
            "example_child_keys": [_shown(child_mask.key(ck, k)) for k in counts.head(EXAMPLES).index],
            "example_parent_keys": [_shown(parent_mask.key(pk, k)) for k in parent_keys],
            "orphans_matching_once_trimmed": _trimmed_matches(child.loc[orphan, ck], parent[pk])}


def _tuples(frame: pd.DataFrame) -> pd.Series:
    """Each row's values as a tuple of Python values."""
    return pd.Series(list(zip(*(frame[c].tolist() for c in frame.columns))), dtype=object)


def _trimmed_matches(orphans: pd.DataFrame, parent: pd.DataFrame) -> int:
    """Orphan rows whose key would find a parent once both sides are read as text without surrounding
    spaces and letter case (``'n1 '`` for ``'N1'``, ``'42'`` for ``42``)."""
    def norm(frame: pd.DataFrame) -> pd.Series:
        parts = [frame[c].astype(str).str.strip().str.upper().reset_index(drop=True) for c in frame.columns]
        return parts[0].str.cat(parts[1:], sep="\x1f") if len(parts) > 1 else parts[0]

    if len(orphans) == 0:
        return 0
    return int(norm(orphans).isin(set(norm(parent.dropna()))).sum())


def _shown(key: tuple) -> str:
    """A key as a literal: strings quoted (padding visible), numbers and times as they print."""
    parts = [repr(v) if isinstance(v, str) else str(v) for v in key]
    return parts[0] if len(parts) == 1 else f"({', '.join(parts)})"


def all_orphans_warning(rel: RelationshipSpec, m: dict) -> str | None:
    """A loud warning when child rows have keys but none of them finds a parent row (None otherwise)."""
    keyed = m["child_rows"] - m["null_key"]
    if keyed == 0 or m["matched"]:
        return None
    hint = ""
    if [t.split()[0] for t in m["child_key_types"]] != [t.split()[0] for t in m["parent_key_types"]]:
        hint = f" The key types differ: {m['child_key_types']} vs {m['parent_key_types']}."
    if m["orphans_matching_once_trimmed"]:
        hint += (f" {m['orphans_matching_once_trimmed']:,} of them would find a parent once both keys are read as "
                 "text without surrounding spaces or letter case: the values agree, their type or format does not.")
    return (f"[WARN] relationship '{rel.name}' ({rel.condition}): none of the {keyed:,} '{rel.child}' rows with a key "
            f"finds a '{rel.parent}' row — every child is an orphan, so the relational space of '{rel.parent}' learns "
            f"nothing from its '{rel.child}' rows. Child keys {m['child_keys']} ({', '.join(m['child_key_types'])}), "
            f"e.g. {', '.join(m['example_child_keys'])}; parent keys {m['parent_keys']} "
            f"({', '.join(m['parent_key_types'])}), e.g. {', '.join(m['example_parent_keys']) or 'none'}.{hint} "
            "Make both sides hold the same values in the same type and format (cast, trim or re-code one side in "
            "the warehouse, or correct the join condition in the dataset spec), then retrain.")
