"""``RelationalSpace``: the hierarchical (multi-table) embedding space of a parent table (spec §1.3
"How Featrix Handles Multi-Table Data", §19 "Hierarchical Embedding Spaces").

    rs = RelationalSpace.fit(tables={"planes": planes, "flights": flights},
                             relationships=["flights.tailnum = planes.tailnum"], parent="planes")
    rs.encode(planes)                       # (n, d_model): each plane with what its flights say
    rs.save(path); RelationalSpace.load(path, tables={"flights": flights})
    Predictor.fit(rs, planes_with_target, target="manufacturer_group")

How (spec §1.3 steps 1–3):

1. *One space per table.* Each child table gets its own ``EmbeddingSpace`` (or the one passed in
   ``child_spaces``); its many-to-one lookups (dimension tables such as airlines or airports) are
   joined into its rows first (``denormalise``: columns named ``<lookup>.<column>``, row count
   unchanged). A child with children of its own is a ``RelationalSpace`` itself (depth 2).
2. *Learned join embedding.* The parent's space gets, per child relationship, a ``<link>.children``
   column: the parent's child rows encoded by the child space (join key hidden) and pooled by
   attention with learned queries (``ChildrenEncoder``), plus ``<link>.count`` and the mean of each
   numeric child column as ordinary scalar columns. It is trained self-supervised like any table space
   (masked columns, joint/marginal losses), so the children column is predicted from the parent's
   columns and vice versa.
3. *No row explosion.* Training batches are parent rows: the parent-level sampler puts every parent in
   exactly one batch per epoch. A parent with more than ``max_children`` children keeps that many,
   evenly spaced through its children in time order (child time column, else table order) — a
   deterministic rule, never duplicated rows; the count and means still use every child.

Time consistency (spec §1.3): with ``cutoff`` (a parent column), a parent only sees children whose
time column is before its cutoff. Orphan children (null or unmatched key), parents without children
(a learned "no children" embedding) and children left out by the cutoff are counted in ``report()``.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from featrix_model import io
from featrix_model.codecs.children import ChildrenCodec
from featrix_model.codecs.timestamp import parse_timestamps
from featrix_model.columns import default_column_types, plan_columns
from featrix_model.encoders.children import ChildrenEncoder
from featrix_model.space import EmbeddingSpace

MAX_CHILDREN = 64
MAX_STAT_COLUMNS = 16
MAX_DEPTH = 2
# The parent-level space is a warm start: predictors fine-tune the aggregation for their target. On the
# TASKS.md multi-table tasks 15 self-supervised epochs beat the 33–77 a 150 s budget buys (rainy-day AUC
# 0.792 vs 0.765; plane manufacturer accuracy 0.986 vs 0.9855): longer training overfits a few thousand parents.
PARENT_MAX_EPOCHS = 15
CHILD_TENSOR_BYTES = 512 * 2**20
_IDENT = r'(?:"([^"]+)"|([A-Za-z_][\w$]*))'
_EQUALITY = re.compile(rf"^\s*{_IDENT}\s*\.\s*{_IDENT}\s*=\s*{_IDENT}\s*\.\s*{_IDENT}\s*$")


def relational_column_types() -> dict:
    return {**default_column_types(), "children": (ChildrenCodec, ChildrenEncoder)}


# ---------------------------------------------------------------------------------- relationships


@dataclass
class Relationship:
    """``child`` rows point at one ``parent`` row each: child_cols[i] = parent_cols[i]."""

    child: str
    parent: str
    child_cols: list[str]
    parent_cols: list[str]
    name: str = ""
    cardinality: str = "many_to_one"

    @property
    def text(self) -> str:
        return " AND ".join(f"{self.child}.{c} = {self.parent}.{p}" for c, p in zip(self.child_cols, self.parent_cols))


def parse_relationship(rel, tables: dict[str, pd.DataFrame]) -> Relationship:
    """A relationship from a SQL equality join (``"flights.tailnum = planes.tailnum"``, composite keys
    joined with AND), a dict ``{"join": ..., "cardinality": ..., "name": ...}`` or a ``Relationship``.
    Cardinality (read left to right) is inferred from key uniqueness when not given."""
    if isinstance(rel, Relationship):
        for t in (rel.child, rel.parent):
            if t not in tables:
                raise KeyError(f"relationship {rel.text!r} names table '{t}', which is not among the tables {sorted(tables)}.")
        _check_key_types(rel.text, tables[rel.child][rel.child_cols], tables[rel.parent][rel.parent_cols])
        _check_unique_parent(rel.text, tables[rel.parent], rel.parent, rel.parent_cols)
        return rel
    spec = {"join": rel} if isinstance(rel, str) else dict(rel)
    join = spec.get("join") or spec.get("on")
    if not join:
        raise ValueError(f"relationship {rel!r} has no join condition (e.g. \"child.key = parent.key\").")
    sides = []
    for part in re.split(r"\s+and\s+", join.strip(), flags=re.IGNORECASE):
        m = _EQUALITY.match(part)
        if not m:
            raise ValueError(f"relationship {join!r}: {part!r} is not an equality of two table.column names; "
                             "write it as \"child.key = parent.key\" (composite keys joined with AND).")
        g = [a or b for a, b in zip(m.groups()[::2], m.groups()[1::2])]
        sides.append(g)
    left, right = sides[0][0], sides[0][2]
    for lt, _, rt, _ in sides:
        if {lt, rt} != {left, right} or lt == rt:
            raise ValueError(f"relationship {join!r}: every equality must compare the same two tables.")
    for t in (left, right):
        if t not in tables:
            raise KeyError(f"relationship {join!r} names table '{t}', which is not among the tables {sorted(tables)}.")
    lcols = [lc if lt == left else rc for lt, lc, rt, rc in sides]
    rcols = [rc if rt == right else lc for lt, lc, rt, rc in sides]
    for t, cols in ((left, lcols), (right, rcols)):
        missing = [c for c in cols if c not in tables[t].columns]
        if missing:
            raise KeyError(f"relationship {join!r}: table '{t}' has no column {missing}; its columns: {list(tables[t].columns)}.")
    _check_key_types(join, tables[left][lcols], tables[right][rcols])
    card = spec.get("cardinality")
    if card is None:
        if _unique(tables[right], rcols):
            card = "one_to_one" if _unique(tables[left], lcols) else "many_to_one"
        elif _unique(tables[left], lcols):
            card = "one_to_many"
        else:
            raise ValueError(f"relationship {join!r} is many-to-many (neither side's key is unique): aggregate it "
                             "through a bridge table, or declare which side is the parent.")
    if card not in ("many_to_one", "one_to_one", "one_to_many"):
        raise ValueError(f"relationship {join!r}: cardinality {card!r} is not one of many_to_one, one_to_one, one_to_many.")
    child, parent, ccols, pcols = (right, left, rcols, lcols) if card == "one_to_many" else (left, right, lcols, rcols)
    _check_unique_parent(join, tables[parent], parent, pcols)
    return Relationship(child, parent, list(ccols), list(pcols), spec.get("name") or "", card)


def _check_unique_parent(join: str, frame: pd.DataFrame, parent: str, cols: list[str]) -> None:
    dup = frame[cols].dropna()
    dup = dup[dup.duplicated(keep=False)]
    if len(dup):
        raise ValueError(f"relationship {join!r}: parent table '{parent}' has {len(dup):,} rows with a repeated key "
                         f"{cols}, e.g. {dup.head(3).to_dict('records')}; a parent key must be unique.")


def _unique(df: pd.DataFrame, cols: list[str]) -> bool:
    return not df[cols].dropna().duplicated().any()


def _kind(s: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "timestamp"
    return "text"


def _check_key_types(join: str, a: pd.DataFrame, b: pd.DataFrame) -> None:
    for ca, cb in zip(a.columns, b.columns):
        ka, kb = _kind(a[ca]), _kind(b[cb])
        if ka != kb:
            raise TypeError(f"relationship {join!r}: key '{ca}' is {ka} ({a[ca].dtype}) but '{cb}' is {kb} "
                            f"({b[cb].dtype}); no row would match. Cast one side so both keys have the same type.")


def denormalise(frame: pd.DataFrame, lookups: list[tuple[Relationship, str]], tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Join many-to-one lookup tables into ``frame``'s rows: their columns come in as
    ``<name>.<column>`` (the lookup's key columns are dropped: they equal the foreign key). The row
    count and order never change; an unmatched key gives missing values."""
    out = frame.reset_index(drop=True)
    for rel, name in lookups:
        if rel.parent not in tables:
            raise KeyError(f"lookup '{name}' needs table '{rel.parent}' ({rel.text}); pass it in tables.")
        lk = tables[rel.parent]
        cols = [c for c in lk.columns if c not in rel.parent_cols]
        keys = [f"__featrix_key{i}" for i in range(len(rel.parent_cols))]
        right = lk[rel.parent_cols + cols].rename(columns={**dict(zip(rel.parent_cols, keys)),
                                                           **{c: f"{name}.{c}" for c in cols}})
        right = right.dropna(subset=keys)
        dup = right[right.duplicated(subset=keys, keep=False)]
        if len(dup):
            raise ValueError(f"lookup '{name}' ({rel.text}): table '{rel.parent}' repeats key(s) "
                             f"{dup[keys].drop_duplicates().head(3).to_numpy().tolist()} in {rel.parent_cols}; "
                             "a lookup joined into rows must have one row per key.")
        out = out.merge(right, how="left", left_on=rel.child_cols, right_on=keys, sort=False).drop(columns=keys)
    return out


# ---------------------------------------------------------------------------------- child rows


def _time_ns(values: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch as floats (NaN for missing), for ordering and cutoffs."""
    t = parse_timestamps(values.reset_index(drop=True))[0]  # time zones and epoch numbers as for the codec
    ns = t.to_numpy(dtype="datetime64[ns]").view("int64").astype(float)
    ns[t.isna().to_numpy()] = np.nan
    return ns


@dataclass
class ChildBank:
    """One child table's rows for a relationship: their embeddings, keys, times and numeric values."""

    embeddings: np.ndarray
    keys: pd.DataFrame
    times: np.ndarray | None
    stats: np.ndarray

    def select(self, parent_keys: pd.DataFrame, cutoff: np.ndarray | None, cap: int,
               statistics: tuple[str, ...] = ("mean",)):
        """Per parent row: (capped child positions, child count), ``{statistic: (n, stat columns)}`` over
        all its children (missing values skipped; NaN without any), and counts of what was left out."""
        n = len(parent_keys)
        left = self.keys.copy()
        left.columns = [f"k{i}" for i in range(left.shape[1])]
        left["__pos"] = np.arange(len(left))
        null_key = int(left.drop(columns="__pos").isna().any(axis=1).sum())
        left = left.dropna()
        right = parent_keys.reset_index(drop=True).copy()
        right.columns = list(left.columns[:-1])
        right["__parent"] = np.arange(n)
        m = left.merge(right.dropna(), on=list(right.columns[:-1]), how="inner")
        pos, par = m["__pos"].to_numpy(), m["__parent"].to_numpy()
        info = {"children": int(len(self.keys)), "null_key": null_key,
                "unmatched_key": int(len(left) - pd.unique(pos).size), "after_cutoff": 0, "unknown_time": 0}
        t = self.times[pos] if self.times is not None else pos.astype(float)
        if cutoff is not None and self.times is not None:
            c = cutoff[par]
            unknown = np.isnan(t) & ~np.isnan(c)
            keep = ~(t >= c) & ~unknown  # NaN cutoff keeps everything
            info["after_cutoff"] = int((~keep & ~unknown).sum())
            info["unknown_time"] = int(unknown.sum())
            pos, par, t = pos[keep], par[keep], t[keep]
        order = np.lexsort((pos, np.nan_to_num(t, nan=np.inf), par))
        pos, par = pos[order], par[order]
        counts = np.bincount(par, minlength=n)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        i = np.arange(cap)
        take = np.where(counts[:, None] > cap, (i[None, :] * counts[:, None]) // cap, i[None, :])
        valid = i[None, :] < np.minimum(counts, cap)[:, None]
        chosen = pos[np.where(valid, starts[:, None] + take, 0).clip(max=max(len(pos) - 1, 0))] if len(pos) else \
            np.zeros((n, cap), dtype=np.int64)
        selections = [(chosen[r][valid[r]], int(counts[r])) if counts[r] else None for r in range(n)]
        stats = {s: np.full((n, self.stats.shape[1]), np.nan) for s in statistics}
        vals = self.stats[pos]
        for j in range(self.stats.shape[1]):
            ok = ~np.isnan(vals[:, j])
            v, g = vals[ok, j], par[ok]
            k = np.bincount(g, minlength=n)
            mean = np.bincount(g, weights=v, minlength=n) / np.maximum(k, 1)
            for s in statistics:
                if s == "mean":
                    col = mean
                elif s == "std":
                    col = np.sqrt(np.maximum(np.bincount(g, weights=v * v, minlength=n) / np.maximum(k, 1) - mean**2, 0))
                else:
                    col = np.full(n, -np.inf if s == "max" else np.inf)
                    (np.fmax if s == "max" else np.fmin).at(col, g, v)
                stats[s][:, j] = np.where(k > 0, col, np.nan)
        info.update(parents=n, parents_without_children=int((counts == 0).sum()),
                    parents_capped=int((counts > cap).sum()), max_children=int(counts.max()) if n else 0,
                    median_children=float(np.median(counts)) if n else 0.0)
        return selections, counts, stats, info


@dataclass
class ChildLink:
    """A parent's child relationship: how the child rows are built, encoded and aggregated."""

    rel: Relationship
    name: str
    lookups: list[tuple[Relationship, str]]
    time_column: str | None
    cutoff: str | None
    cap: int
    stat_columns: list[str]
    hide: list[str]
    statistics: tuple[str, ...] = ("mean",)
    space: EmbeddingSpace | None = None
    bank: ChildBank | None = field(default=None, repr=False)

    @property
    def column(self) -> str:
        return f"{self.name}.children"

    def to_config(self) -> dict:
        return {"relationship": asdict(self.rel), "name": self.name, "time_column": self.time_column,
                "cutoff": self.cutoff, "cap": self.cap, "stat_columns": self.stat_columns, "hide": self.hide,
                "statistics": list(self.statistics),
                "lookups": [{"relationship": asdict(r), "name": n} for r, n in self.lookups]}

    @classmethod
    def from_config(cls, c: dict) -> "ChildLink":
        return cls(Relationship(**c["relationship"]), c["name"],
                   [(Relationship(**x["relationship"]), x["name"]) for x in c["lookups"]],
                   c["time_column"], c["cutoff"], c["cap"], c["stat_columns"], c["hide"],
                   tuple(c.get("statistics", ("mean",))))


def _lookups_of(table: str, rels: list[Relationship], skip: set[str]) -> list[tuple[Relationship, str]]:
    """Many-to-one relationships out of ``table`` into tables not in ``skip`` (the parent line): named
    by the lookup table, or by the foreign key when one table is looked up twice (origin, dest)."""
    found = [r for r in rels if r.child == table and r.parent != table and r.parent not in skip]
    names = [r.parent for r in found]
    return [(r, r.name or (r.parent if names.count(r.parent) == 1 else "_".join(r.child_cols))) for r in found]


# ---------------------------------------------------------------------------------- the space


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
            output_dir: str | Path | None = None,
            _ancestors: tuple[str, ...] = (), **overrides) -> "RelationalSpace":
        """Train child spaces (unless given), then the parent-level space. ``child_time``: {table: time
        column} orders children (and enables ``cutoff``: a parent column, or {child table: column}, of
        times after which that parent's children are not used). ``child_statistics``: which of mean, std,
        min, max of each numeric child column become parent columns. ``primary_keys``: {table: columns} left
        out of that table's space (row identifiers). ``child_hide``: {child table: columns} hidden (MARGINAL
        token) when its rows are encoded, e.g. the parent's own columns joined into them. ``exclude``/``keep``:
        parent columns."""
        primary_keys = {t: [k] if isinstance(k, str) else list(k) for t, k in (primary_keys or {}).items()}
        unknown = set(child_statistics) - {"mean", "std", "min", "max"}
        if unknown:
            raise ValueError(f"child_statistics {sorted(unknown)}: choose from mean, std, min, max.")
        started = time.monotonic()
        if parent not in tables:
            raise KeyError(f"parent table '{parent}' is not among the tables {sorted(tables)}.")
        rels = [parse_relationship(r, tables) for r in relationships]
        line = {parent, *_ancestors}
        child_rels = [r for r in rels if r.parent == parent and r.child not in line]
        if not child_rels:
            raise ValueError(f"table '{parent}' has no child table among the relationships "
                             f"{[r.text for r in rels]}: nothing to aggregate (use EmbeddingSpace.fit).")
        child_time = child_time or {}
        child_budget = child_time_budget_s if child_time_budget_s is not None else time_budget_s
        names = [r.child for r in child_rels]
        decisions, links = [], []
        for r in child_rels:
            name = r.name or (r.child if names.count(r.child) == 1 else f"{r.child}_{'_'.join(r.child_cols)}")
            lookups = _lookups_of(r.child, rels, line)
            child = tables[r.child]
            tcol = child_time.get(r.child)
            if tcol is not None and tcol not in child.columns:
                raise KeyError(f"child_time: table '{r.child}' has no column '{tcol}'.")
            cut = cutoff.get(r.child) if isinstance(cutoff, dict) else cutoff
            if cut is not None and tcol is None:
                raise ValueError(f"cutoff '{cut}' needs child_time for table '{r.child}': which column dates its rows?")
            link = ChildLink(r, name, lookups, tcol, cut, max_children, [], list(r.child_cols), tuple(child_statistics))
            grandchildren = [g for g in rels if g.parent == r.child and g.child not in line | {r.child}]
            if child_spaces and r.child in child_spaces:
                link.space = child_spaces[r.child]
                known = link.space.plan.all_columns  # join only the lookups the given space was trained with
                link.lookups = [lk for lk in lookups if any(str(c).startswith(f"{lk[1]}.") for c in known)]
                decisions.append(f"{name}: child space of '{r.child}' passed in (reused, not retrained)")
            elif grandchildren and len(_ancestors) + 1 < MAX_DEPTH:
                if cut is not None:
                    decisions.append(f"[WARN] {name}: the cutoff applies to '{r.child}' rows, not to their own "
                                     "children (depth 2)")
                link.space = cls.fit(tables, rels, r.child, child_spaces, child_budget, seed, progress,
                                     child_time=child_time, max_children=max_children,
                                     child_statistics=child_statistics, child_hide=child_hide,
                                     child_time_budget_s=child_time_budget_s, primary_keys=primary_keys,
                                     exclude=tuple(dict.fromkeys([*r.child_cols, *primary_keys.get(r.child, [])])),
                                     _ancestors=(*_ancestors, parent), **overrides)
                decisions.append(f"{name}: '{r.child}' has children of its own "
                                 f"({', '.join(g.child for g in grandchildren)}): its space is relational (depth 2)")
            else:
                frame = denormalise(child, lookups, tables)
                if grandchildren:
                    decisions.append(f"[WARN] {name}: children of '{r.child}' are below depth {MAX_DEPTH}; not used")
                try:
                    link.space = EmbeddingSpace.fit(frame, child_budget, seed, progress, keep_training_rows=False,
                                                    exclude=tuple(dict.fromkeys([*r.child_cols, *primary_keys.get(r.child, [])])))
                except ValueError as e:
                    raise ValueError(f"child table '{r.child}' of '{parent}' ({r.text}): {e}") from None
                decisions.append(f"{name}: child space trained on {len(frame):,} '{r.child}' rows"
                                 + (f" with lookups {[n for _, n in lookups]} joined in" if lookups else ""))
            hidden = (*r.child_cols, *primary_keys.get(r.child, []), *(child_hide or {}).get(r.child, []))
            link.hide = [c for c in dict.fromkeys(hidden) if c in link.space.plan.columns]
            used = link.space.plan.info
            numeric = [c for c in child.columns if c in link.space.plan.columns and c not in hidden
                       and used[c]["semantic_type"] in ("scalar", "boolean") and c != tcol]
            if len(numeric) > MAX_STAT_COLUMNS:
                decisions.append(f"{name}: means of the first {MAX_STAT_COLUMNS} of {len(numeric)} numeric child "
                                 "columns become parent columns (the attention pooling sees them all)")
            link.stat_columns = numeric[:MAX_STAT_COLUMNS]
            links.append(link)
        parent_lookups = _lookups_of(parent, rels, set(_ancestors) | {r.child for r in child_rels})
        rs_tables = dict(tables)
        frame = denormalise(tables[parent], parent_lookups, tables)
        n_parents = len(frame)
        for link in links:
            cap = min(link.cap, max(4, CHILD_TENSOR_BYTES // max(1, n_parents * link.space.d_model * 4)))
            if cap < link.cap:
                decisions.append(f"{link.name}: at most {cap} children per parent (not {link.cap}) so the "
                                 f"{n_parents:,} parents' child tensors stay under {CHILD_TENSOR_BYTES >> 20} MB")
            link.cap = cap
        holder = cls.__new__(cls)  # attach() before the network exists: builds the banks and child columns
        holder.parent, holder.links, holder.parent_lookups = parent, links, parent_lookups
        holder.attach(rs_tables, _fitting=True)
        prepared, report = holder._with_children(frame)
        own_keys = [c for c in primary_keys.get(parent, []) if c in prepared.columns and c not in keep]
        plan = plan_columns(prepared.drop(columns=[lk.column for lk in links]),
                            exclude=tuple(dict.fromkeys([*exclude, *own_keys])), keep=keep)
        for link in links:
            codec = ChildrenCodec(link.column, cap=link.cap, d_child=link.space.d_model).fit(prepared[link.column])
            codec.attach(link.bank.embeddings)
            plan.columns.append(link.column)
            plan.all_columns.append(link.column)
            plan.codecs[link.column] = codec
            plan.encoder_classes[link.column] = ChildrenEncoder
            plan.info[link.column] = {
                "semantic_type": "children", "type_reason": f"child rows of {link.rel.text}", "excluded": False,
                "reason": None}
            rep = report[link.name]
            plan.decisions.append(
                f"column '{link.column}': {rep['children']:,} '{link.rel.child}' rows → child space → attention "
                f"pooling; median {rep['median_children']:.0f} children per parent, {rep['parents_capped']:,} "
                f"parents capped at {link.cap} (evenly spaced in {link.time_column or 'table'} order), "
                f"{rep['parents_without_children']:,} parents without children (learned 'no children' embedding)")
            if rep["unknown_time"]:
                plan.decisions.append(f"[WARN] {link.name}: {rep['unknown_time']:,} '{link.rel.child}' rows have no "
                                      f"{link.time_column}: under the cutoff they are not used (counted)")
            for key in ("null_key", "unmatched_key"):
                if rep[key]:
                    plan.decisions.append(f"[WARN] {link.name}: {rep[key]:,} '{link.rel.child}' rows have "
                                          f"{'a null' if key == 'null_key' else 'no matching'} {link.rel.child_cols} "
                                          f"key: orphans, counted and not used")
        plan.decisions[:0] = decisions
        if "epochs" not in overrides and "max_epochs" not in overrides:
            overrides["max_epochs"] = PARENT_MAX_EPOCHS
            plan.decisions.append(f"parent-level space: at most {PARENT_MAX_EPOCHS} epochs — a warm start that predictors "
                                  "fine-tune; longer self-supervised training overfitted a few thousand parents")
        rs = cls._train(prepared, plan, time_budget_s=time_budget_s, seed=seed, progress=progress,
                        training_rows=frame, movie=False, config=None, output_dir=output_dir, device=None,
                        started=started, pair_columns=[c for c in plan.columns if c not in {lk.column for lk in links}],
                        every_row_each_epoch=True, **overrides)
        rs.parent, rs.links, rs.parent_lookups = parent, links, parent_lookups
        rs.tables_, rs.relational_report_ = holder.tables_, report
        return rs

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

    def attach(self, tables: dict[str, pd.DataFrame], _fitting: bool = False) -> "RelationalSpace":
        """Give the space its child (and lookup) tables: child rows are encoded once by the child spaces
        and kept in memory, so ``encode`` of parent rows finds each parent's children by key."""
        for link in self.links:
            if link.rel.child not in tables:
                raise KeyError(f"the relational space of '{self.parent}' needs child table '{link.rel.child}' "
                               f"({link.rel.text}); tables given: {sorted(tables)}.")
            frame = denormalise(tables[link.rel.child], link.lookups, tables)
            if isinstance(link.space, RelationalSpace):
                link.space.attach(tables)
            emb = link.space.encode(frame, hide=tuple(link.hide))
            stats = np.column_stack([pd.to_numeric(frame[c], errors="coerce").astype("Float64").to_numpy(float, na_value=np.nan)
                                     for c in link.stat_columns]) if link.stat_columns else np.zeros((len(frame), 0))
            times = _time_ns(frame[link.time_column]) if link.time_column else None
            link.bank = ChildBank(emb, frame[link.rel.child_cols].reset_index(drop=True), times, stats)
            if not _fitting:
                self.plan.codecs[link.column].attach(emb)
        self.tables_ = tables
        return self

    def _with_children(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
        """``frame`` plus, per child link, the count, the child-column means and the children column."""
        out, report, extra = frame.reset_index(drop=True), {}, {}
        for link in self.links:
            missing = [c for c in link.rel.parent_cols if c not in out.columns]
            if missing:
                raise KeyError(f"parent rows of '{self.parent}' need key column(s) {missing} to find their "
                               f"'{link.rel.child}' children ({link.rel.text}).")
            if link.cutoff and link.cutoff not in out.columns:
                raise KeyError(f"parent rows of '{self.parent}' need the cutoff column '{link.cutoff}'.")
            cutoff = _time_ns(out[link.cutoff]) if link.cutoff else None
            sel, counts, stats, info = link.bank.select(out[link.rel.parent_cols], cutoff, link.cap, link.statistics)
            extra[f"{link.name}.count"] = counts.astype(float)
            for j, c in enumerate(link.stat_columns):
                for s in link.statistics:
                    extra[f"{link.name}.{c}.{s}"] = stats[s][:, j]
            extra[link.column] = pd.Series(sel, dtype=object)
            report[link.name] = info
        return pd.concat([out, pd.DataFrame(extra, index=out.index)], axis=1), report

    def child_aggregates(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` (parent rows) with each link's ``<link>.count`` and ``<link>.<column>.mean`` columns: the
        plain per-parent aggregates the space also sees (e.g. for a gradient-boosting baseline)."""
        out = self._with_children(df)[0]
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
                    f"tables={{...}} with {sorted({lk.rel.child for lk in self.links})} to RelationalSpace.load / "
                    "Predictor.load, or call .attach(tables).")
            todo = [lk for lk in self.parent_lookups if not any(str(c).startswith(f"{lk[1]}.") for c in df.columns)]
            df = denormalise(df, todo, self.tables_)
            df = self._with_children(df)[0]
        return super().prepare(df, hide)

    def report(self) -> dict:
        """What the relational space was built from: per child link, children, orphans, parents
        without children, capping and cutoff counts (at fit time), and the child space's size."""
        return {"parent": self.parent, "links": {
            lk.name: {"relationship": lk.rel.text, "child_table": lk.rel.child,
                      "lookups": {n: r.text for r, n in lk.lookups}, "time_column": lk.time_column,
                      "cutoff": lk.cutoff, "cap": lk.cap, "child_columns": len(lk.space.plan.columns),
                      "child_space": "relational" if isinstance(lk.space, RelationalSpace) else "table",
                      **self.relational_report_.get(lk.name, {})} for lk in self.links}}

    # ------------------------------------------------------------------ save / load

    def save(self, path: str | Path, figures: bool = True) -> Path:
        path = super().save(path, figures)
        for link in self.links:
            link.space.save(path / "children" / link.name, figures=False)
        io.write_json(path / "relational.json", {
            "parent": self.parent, "links": [lk.to_config() for lk in self.links],
            "parent_lookups": [{"relationship": asdict(r), "name": n} for r, n in self.parent_lookups],
            "report": self.relational_report_})
        return path

    @classmethod
    def load(cls, path: str | Path, column_types: dict | None = None, tables: dict | None = None) -> "RelationalSpace":
        path = Path(path)
        rs = super().load(path, {**(column_types or default_column_types()), **relational_column_types()})
        doc = io.read_json(path / "relational.json")
        rs.parent, rs.relational_report_ = doc["parent"], doc["report"]
        rs.links = [ChildLink.from_config(c) for c in doc["links"]]
        rs.parent_lookups = [(Relationship(**x["relationship"]), x["name"]) for x in doc["parent_lookups"]]
        for link in rs.links:
            child = path / "children" / link.name
            child_cls = RelationalSpace if io.space_kind(child, io.read_json(child / "config.json")) == "relational" \
                else EmbeddingSpace
            link.space = child_cls.load(child, column_types=column_types)
        rs.tables_ = None
        return rs.attach(tables) if tables is not None else rs
