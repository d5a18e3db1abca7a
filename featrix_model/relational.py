"""``RelationalSpace``: the hierarchical (multi-table) embedding space of a parent table (spec §1.3
"How Featrix Handles Multi-Table Data", §19 "Hierarchical Embedding Spaces").

    rs = RelationalSpace.fit(tables={"planes": planes, "flights": flights},
                             relationships=["flights.tailnum = planes.tailnum"], parent="planes")
    rs.encode(planes)                       # (n, d_model): each plane with what its flights say
    rs.save(path); RelationalSpace.load(path, tables={"flights": flights})
    Predictor.fit(rs, planes_with_target, target="manufacturer_group")

How:

1. *One space per table.* Each child table gets its own ``EmbeddingSpace`` (or the one passed in
   ``child_spaces``); its many-to-one lookups are joined into its rows first (``denormalise``). A
   child with children of its own is a ``RelationalSpace`` itself (depth 2).
2. *Learned join embedding.* The parent's space gets, per child relationship, a ``<link>.children``
   column — the parent's child rows encoded by the child space (join key hidden) and pooled by
   attention with learned queries (``ChildrenEncoder``) — plus ``<link>.count`` and the mean of each
   numeric child column as ordinary scalar columns. It trains self-supervised like any table space, so
   the children column is predicted from the parent's columns and vice versa.
3. *No row explosion.* Training batches are parent rows: every parent is in exactly one batch per
   epoch, and a parent keeps at most ``max_children`` children (``featrix_model.children``).

With ``cutoff`` (a parent column), a parent only sees children dated before it. Orphan children,
parents without children (a learned "no children" embedding) and children left out by the cutoff
are counted in ``report()``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pandas as pd

from featrix_model import inputs, io
from featrix_model.children import STATISTICS, ChildLink, save_bank, with_children
from featrix_model.codecs.children import ChildrenCodec
from featrix_model.columns import default_column_types, plan_columns
from featrix_model.encoders.children import ChildrenEncoder
from featrix_model.relationships import Relationship, denormalise, lookups_of, parse_relationship
from featrix_model.space import EmbeddingSpace, codec_context, training_settings, use_threads

MAX_CHILDREN = 64
MAX_STAT_COLUMNS = 16
MAX_DEPTH = 2
CHILD_TENSOR_BYTES = 512 * 2**20


def relational_column_types() -> dict:
    return {**default_column_types(), "children": (ChildrenCodec, ChildrenEncoder)}


class RelationalSpace(EmbeddingSpace):
    """A parent table's embedding space that includes what its child tables say (see module docstring)."""

    kind = "relational"
    parent: str = ""
    links: list[ChildLink]
    parent_lookups: list[tuple[Relationship, str]]

    @classmethod
    def fit(cls, tables: dict[str, pd.DataFrame], relationships: list, parent: str,
            child_spaces: dict[str, EmbeddingSpace] | None = None, time_budget_s: float | None = None, seed: int = 0,
            progress: bool = False, *, child_time: dict[str, str] | None = None, cutoff: str | dict | None = None,
            max_children: int = MAX_CHILDREN, child_statistics: tuple[str, ...] = ("mean",),
            primary_keys: dict[str, list[str]] | None = None,
            exclude: tuple[str, ...] = (), keep: tuple[str, ...] = (),
            child_time_budget_s: float | None = None, child_hide: dict[str, list[str]] | None = None,
            output_dir: str | Path | None = None, threads: int | None = None, epochs: int | None = None,
            max_epochs: int | None = None, lr: float | None = None, batch_size: int | None = None,
            d_model: int | None = None, deterministic: bool | None = None, allow_tf32: bool | None = None,
            analysis: dict | None = None, checkpoint_dir: str | Path | None = None,
            train_rows: np.ndarray | None = None) -> "RelationalSpace":
        """Train child spaces (unless given), then the parent-level space.

        ``train_rows``: a boolean mask over the parent table's rows, the parents the parent-level space
        learns from (its codecs included); default all. The others (say, rows a predictor is measured
        on) still count in the report of how children meet parents, and are encoded like any parent.

        ``child_time``: {table: time column} orders children (and enables ``cutoff``: a parent column,
        or {child table: column}, of times after which that parent's children are not used).
        ``child_statistics``: which of mean, std, min, max of each numeric child column become parent
        columns. ``primary_keys``: {table: columns} left out of that table's space (row identifiers).
        ``child_hide``: {child table: columns} hidden (MARGINAL token) when its rows are encoded, e.g.
        the parent's own columns joined into them. ``exclude``/``keep``: parent columns;
        ``analysis``: {parent column: (profile, verdict)} computed earlier, as for ``EmbeddingSpace.fit``. The training
        settings (``threads``, ``epochs``, ``max_epochs``, ``lr``, ``batch_size``, ``d_model``,
        ``deterministic``, ``allow_tf32``) are the parent-level space's, as for ``EmbeddingSpace.fit``;
        child spaces get the thread count and the CUDA numerics. ``checkpoint_dir``: the parent-level
        space's per-epoch checkpoints, as for ``EmbeddingSpace.fit`` (the checkpoint's fingerprint
        covers the parent-level data and network, not the child spaces' weights: give each set of
        child spaces its own folder)."""
        settings = training_settings(threads=use_threads(threads), epochs=epochs, max_epochs=max_epochs, lr=lr,
                                     batch_size=batch_size, d_model=d_model, deterministic=deterministic,
                                     allow_tf32=allow_tf32)
        return cls._fit(tables, relationships, parent, child_spaces, time_budget_s, seed, progress, settings,
                        child_time=child_time or {}, cutoff=cutoff, max_children=max_children,
                        child_statistics=tuple(child_statistics), primary_keys=primary_keys, exclude=exclude,
                        keep=keep, child_time_budget_s=child_time_budget_s, child_hide=child_hide or {},
                        output_dir=output_dir, ancestors=(), analysis=analysis, checkpoint_dir=checkpoint_dir,
                        train_rows=train_rows)

    @classmethod
    def _fit(cls, tables, relationships, parent, child_spaces, time_budget_s, seed, progress, settings, *,
             child_time, cutoff, max_children, child_statistics, primary_keys, exclude, keep,
             child_time_budget_s, child_hide, output_dir, ancestors, analysis=None,
             checkpoint_dir=None, train_rows=None) -> "RelationalSpace":
        started = time.monotonic()
        primary_keys = {t: [k] if isinstance(k, str) else list(k) for t, k in (primary_keys or {}).items()}
        unknown = set(child_statistics) - set(STATISTICS)
        if unknown:
            raise ValueError(f"child_statistics {sorted(unknown)}: choose from {', '.join(STATISTICS)}.")
        if parent not in tables:
            raise KeyError(f"parent table '{parent}' is not among the tables {sorted(tables)}.")
        rels = [parse_relationship(r, tables) for r in relationships]
        line = {parent, *ancestors}
        child_rels = [r for r in rels if r.parent == parent and r.child not in line]
        if not child_rels:
            raise ValueError(f"table '{parent}' has no child table among the relationships "
                             f"{[r.text for r in rels]}: nothing to aggregate (use EmbeddingSpace.fit).")
        decisions: list[str] = []
        names = [r.child for r in child_rels]
        links = []
        for r in child_rels:
            link = cls._link(r, r.name or (r.child if names.count(r.child) == 1 else f"{r.child}_{'_'.join(r.child_keys)}"),
                             rels, line, child_time, cutoff, max_children, child_statistics, tables[r.child].columns)
            link.space = cls._child_space(link, tables, rels, line, child_spaces, decisions, parent=parent,
                                          budget=child_time_budget_s if child_time_budget_s is not None else time_budget_s,
                                          seed=seed, progress=progress, settings=settings, child_time=child_time,
                                          max_children=max_children, child_statistics=child_statistics,
                                          child_hide=child_hide, child_time_budget_s=child_time_budget_s,
                                          primary_keys=primary_keys, ancestors=ancestors)
            _summarise_children(link, tables[r.child], primary_keys, child_hide, decisions)
            links.append(link)
        parent_lookups = lookups_of(parent, rels, set(ancestors) | {r.child for r in child_rels})
        frame = denormalise(tables[parent], parent_lookups, tables)
        _cap_children(links, len(frame), decisions)
        for link in links:
            link.build_bank(tables)
        prepared, report = with_children(frame, links, parent)
        rows_in = len(frame)
        if train_rows is not None:
            prepared, note = inputs.chosen_rows(prepared, train_rows, f"'{parent}'")
            frame = inputs.chosen_rows(frame, train_rows, f"'{parent}'")[0]
            decisions += note
        plan = cls._plan(prepared, links, report, primary_keys.get(parent, []), exclude, keep, seed, analysis, rows_in)
        plan.decisions[:0] = decisions
        # every parent each epoch; a warm start: the fewest epochs with which pruning and the ladder act (training.config)
        settings = {**settings, "every_row_each_epoch": True, "warm_start": True}
        rs = cls._train(prepared, plan, settings, time_budget_s=time_budget_s, seed=seed, progress=progress,
                        training_rows=frame, movie=False, output_dir=output_dir, device=None, started=started,
                        pair_columns=[c for c in plan.columns if c not in {lk.column for lk in links}],
                        checkpoint_dir=checkpoint_dir)
        rs.parent, rs.links, rs.parent_lookups = parent, links, parent_lookups
        rs.tables_, rs.relational_report_ = dict(tables), report
        return rs

    # ------------------------------------------------------------------ fit steps

    @staticmethod
    def _link(r: Relationship, name: str, rels, line, child_time, cutoff, max_children, statistics,
              child_columns) -> ChildLink:
        """A child relationship's link (its space comes next), with its time column and cutoff checked."""
        tcol = child_time.get(r.child)
        if tcol is not None and tcol not in child_columns:
            raise KeyError(f"child_time: table '{r.child}' has no column '{tcol}'.")
        cut = cutoff.get(r.child) if isinstance(cutoff, dict) else cutoff
        if cut is not None and tcol is None:
            raise ValueError(f"cutoff '{cut}' needs child_time for table '{r.child}': which column dates its rows?")
        return ChildLink(r, name, lookups_of(r.child, rels, line), tcol, cut, max_children, [],
                         list(r.child_keys), statistics)

    @classmethod
    def _child_space(cls, link: ChildLink, tables, rels, line, child_spaces, decisions, *, parent, budget, seed,
                     progress, settings, child_time, max_children, child_statistics, child_hide,
                     child_time_budget_s, primary_keys, ancestors) -> EmbeddingSpace:
        """The child table's space: the one passed in, a relational one (depth 2), or one trained here."""
        r, name = link.rel, link.name
        keys_out = tuple(dict.fromkeys([*r.child_keys, *primary_keys.get(r.child, [])]))
        grandchildren = [g for g in rels if g.parent == r.child and g.child not in line | {r.child}]
        if child_spaces and r.child in child_spaces:
            space = child_spaces[r.child]
            known = space.plan.all_columns  # join only the lookups the given space was trained with
            link.lookups = [lk for lk in link.lookups if any(str(c).startswith(f"{lk[1]}.") for c in known)]
            decisions.append(f"{name}: child space of '{r.child}' passed in (reused, not retrained)")
            return space
        if grandchildren and len(ancestors) + 1 < MAX_DEPTH:
            if link.cutoff is not None:
                decisions.append(f"[WARN] {name}: the cutoff applies to '{r.child}' rows, not to their own "
                                 "children (depth 2)")
            space = cls._fit(tables, rels, r.child, child_spaces, budget, seed, progress, settings,
                             child_time=child_time, cutoff=None, max_children=max_children,
                             child_statistics=child_statistics, primary_keys=primary_keys, exclude=keys_out, keep=(),
                             child_time_budget_s=child_time_budget_s, child_hide=child_hide, output_dir=None,
                             ancestors=(*ancestors, parent))
            decisions.append(f"{name}: '{r.child}' has children of its own "
                             f"({', '.join(g.child for g in grandchildren)}): its space is relational (depth 2)")
            return space
        frame = denormalise(tables[r.child], link.lookups, tables)
        if grandchildren:
            decisions.append(f"[WARN] {name}: children of '{r.child}' are below depth {MAX_DEPTH}; not used")
        try:
            space = EmbeddingSpace.fit(frame, budget, seed, progress, keep_training_rows=False, exclude=keys_out,
                                       threads=settings.get("threads"), deterministic=settings.get("deterministic"),
                                       allow_tf32=settings.get("allow_tf32"))
        except ValueError as e:
            raise ValueError(f"child table '{r.child}' of '{parent}' ({r.text}): {e}") from None
        decisions.append(f"{name}: child space trained on {len(frame):,} '{r.child}' rows"
                         + (f" with lookups {[n for _, n in link.lookups]} joined in" if link.lookups else ""))
        return space

    @staticmethod
    def _plan(prepared: pd.DataFrame, links: list[ChildLink], report: dict, own_keys: list[str], exclude, keep,
              seed: int, analysis: dict | None, analysis_rows: int | None = None):
        """The parent-level plan: the parent's columns (its own key left out) plus one children column per link."""
        own_keys = [c for c in own_keys if c in prepared.columns and c not in keep]
        plan = plan_columns(prepared.drop(columns=[lk.column for lk in links]),
                            exclude=tuple(dict.fromkeys([*exclude, *own_keys])), keep=keep,
                            context=codec_context(seed), analysis=analysis, analysis_rows=analysis_rows)
        for link in links:
            codec = ChildrenCodec(link.column, cap=link.cap, d_child=link.space.d_model).fit(prepared[link.column])
            codec.attach(link.bank.embeddings)
            rep = report[link.name]
            plan.add_column(link.column, codec, ChildrenEncoder, "children", f"child rows of {link.rel.text}",
                            f"column '{link.column}': {rep['children']:,} '{link.rel.child}' rows → child space → "
                            f"attention pooling; median {rep['median_children']:.0f} children per parent, "
                            f"{rep['parents_capped']:,} parents capped at {link.cap} (evenly spaced in "
                            f"{link.time_column or 'table'} order), {rep['parents_without_children']:,} parents "
                            "without children (learned 'no children' embedding)")
            plan.decisions.extend(_orphan_warnings(link, rep))
        return plan

    def __deepcopy__(self, memo: dict) -> "RelationalSpace":
        """A copy with its own network and plan; the child tables, child spaces and child-row embeddings
        are shared (data and frozen models: fine-tuning a predictor never trains them)."""
        shared = [getattr(self, "tables_", None), *[lk.space for lk in self.links], *[lk.bank for lk in self.links],
                  *[self.plan.codecs[lk.column].bank_ for lk in self.links]]
        memo.update({id(o): o for o in shared if o is not None})
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            setattr(new, k, copy.deepcopy(v, memo))
        return new

    # ------------------------------------------------------------------ child rows

    def attach(self, tables: dict[str, pd.DataFrame]) -> "RelationalSpace":
        """Give the space its child (and lookup) tables: child rows are encoded once by the child spaces
        (or read from the loaded folder's saved banks when they are the rows it was saved with) and kept
        in memory, so ``encode`` of parent rows finds each parent's children by key."""
        saved = getattr(self, "saved_banks_", None)
        for link in self.links:
            if link.rel.child not in tables:
                raise KeyError(f"the relational space of '{self.parent}' needs child table '{link.rel.child}' "
                               f"({link.rel.text}); tables given: {sorted(tables)}.")
            self.plan.codecs[link.column].attach(link.build_bank(tables, saved).embeddings)
        self.tables_ = tables
        return self

    def child_aggregates(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` (parent rows) with each link's ``<link>.count`` and ``<link>.<column>.mean`` columns: the
        plain per-parent aggregates the space also sees (e.g. for a gradient-boosting baseline)."""
        out = with_children(df, self.links, self.parent)[0]
        return out.drop(columns=[lk.column for lk in self.links])

    def fine_tune_reason(self) -> str | None:
        return ("relational space: the learned aggregation of child rows is trained for the target; the "
                "child-row embeddings stay fixed")

    def prepare(self, df, hide=()) -> pd.DataFrame:
        if isinstance(df, dict):
            df = pd.DataFrame([df])
        elif isinstance(df, pd.Series):
            df = df.to_frame().T
        if not all(link.column in df.columns for link in self.links):
            if getattr(self, "tables_", None) is None:
                raise RuntimeError(
                    f"the relational space of '{self.parent}' needs its child tables to encode parent rows: pass "
                    f"tables={{...}} with {sorted({lk.rel.child for lk in self.links})} to load_space / "
                    "Predictor.load, or call .attach(tables).")
            todo = [lk for lk in self.parent_lookups if not any(str(c).startswith(f"{lk[1]}.") for c in df.columns)]
            df = with_children(denormalise(df, todo, self.tables_), self.links, self.parent)[0]
        return super().prepare(df, hide)

    def report(self) -> dict:
        """What the relational space was built from: per child link, children, orphans, parents
        without children, capping and cutoff counts (at fit time), and the child space's size."""
        return {"parent": self.parent, "links": {
            lk.name: {"relationship": lk.rel.text, "child_table": lk.rel.child,
                      "lookups": {n: r.text for r, n in lk.lookups}, "time_column": lk.time_column,
                      "cutoff": lk.cutoff, "cap": lk.cap, "child_columns": len(lk.space.plan.columns),
                      "child_space": lk.space.kind, **self.relational_report_.get(lk.name, {})}
            for lk in self.links}}

    # ------------------------------------------------------------------ save / load

    def _write(self, path: Path, figures: bool) -> None:
        """The parent-level files, each child space (an artifact of its own, under ``children/``) and
        ``relational.json``, all inside the folder that ``save`` puts in place at once."""
        super()._write(path, figures)
        for link in self.links:
            link.space.save(path / "children" / link.name, figures=False)
            if link.bank is not None:  # read back by ``attach`` when the same child rows come (a cache)
                save_bank(path / "children", link.name, link.bank)
        io.write_json(path / "relational.json", {
            "parent": self.parent, "links": [lk.to_config() for lk in self.links],
            "parent_lookups": [{"relationship": r.to_dict(), "name": n} for r, n in self.parent_lookups],
            "report": self.relational_report_})

    @classmethod
    def load(cls, path: str | Path, column_types: dict | None = None, tables: dict | None = None, *,
             verify: bool = True) -> "RelationalSpace":
        path = Path(path)
        covered = io.verify(path) if verify else True  # the manifest lists the child spaces' files too
        rs = super().load(path, {**(column_types or default_column_types()), **relational_column_types()}, verify=False)
        doc_path = path / "relational.json"
        doc = io.read_json(doc_path)
        parent, report, links, lookups = io.fields(doc, doc_path, "parent", "report", "links", "parent_lookups")
        try:
            rs.links = [ChildLink.from_config(c) for c in links]
            rs.parent_lookups = [(Relationship.from_dict(x["relationship"]), x["name"]) for x in lookups]
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise io.ArtifactError(path, "relational.json", f"does not describe the child links ({type(e).__name__}: "
                                   f"{e})") from None
        rs.parent, rs.relational_report_ = parent, report
        for link in rs.links:
            child = path / "children" / link.name
            kind = io.space_kind(child, io.read_json(child / "config.json"))
            link.space = (RelationalSpace if kind == cls.kind else EmbeddingSpace).load(
                child, column_types=column_types, verify=not covered)
        rs.tables_, rs.saved_banks_ = None, path / "children"
        return rs.attach(tables) if tables is not None else rs


def _summarise_children(link: ChildLink, child: pd.DataFrame, primary_keys: dict, child_hide: dict,
                        decisions: list[str]) -> None:
    """Which child columns are hidden when children are encoded, and which numeric ones become statistics."""
    r = link.rel
    hidden = (*r.child_keys, *primary_keys.get(r.child, []), *child_hide.get(r.child, []))
    link.hide = [c for c in dict.fromkeys(hidden) if c in link.space.plan.columns]
    used = link.space.plan.info
    numeric = [c for c in child.columns if c in link.space.plan.columns and c not in hidden
               and used[c]["semantic_type"] in ("scalar", "boolean") and c != link.time_column]
    if len(numeric) > MAX_STAT_COLUMNS:
        decisions.append(f"{link.name}: means of the first {MAX_STAT_COLUMNS} of {len(numeric)} numeric child "
                         "columns become parent columns (the attention pooling sees them all)")
    link.stat_columns = numeric[:MAX_STAT_COLUMNS]


def _cap_children(links: list[ChildLink], n_parents: int, decisions: list[str]) -> None:
    """Lower a link's cap when the parents' padded child tensors would not fit in memory."""
    for link in links:
        cap = min(link.cap, max(4, CHILD_TENSOR_BYTES // max(1, n_parents * link.space.d_model * 4)))
        if cap < link.cap:
            decisions.append(f"{link.name}: at most {cap} children per parent (not {link.cap}) so the "
                             f"{n_parents:,} parents' child tensors stay under {CHILD_TENSOR_BYTES >> 20} MB")
        link.cap = cap


def _orphan_warnings(link: ChildLink, rep: dict) -> list[str]:
    out = []
    if rep["unknown_time"]:
        out.append(f"[WARN] {link.name}: {rep['unknown_time']:,} '{link.rel.child}' rows have no "
                   f"{link.time_column}: under the cutoff they are not used (counted)")
    for key in ("null_key", "unmatched_key"):
        if rep[key]:
            out.append(f"[WARN] {link.name}: {rep[key]:,} '{link.rel.child}' rows have "
                       f"{'a null' if key == 'null_key' else 'no matching'} {list(link.rel.child_keys)} "
                       "key: orphans, counted and not used")
    return out
