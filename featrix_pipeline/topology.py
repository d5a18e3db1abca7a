"""The plan of a dataset: which tables get which model, which tables each model reads, computed once.

``Topology.from_spec(spec)`` answers, in one place, every question the assets, the pipeline and
the report ask of a dataset spec:

* which dimension tables are *looked up* into a table's rows (``lookup: true`` relationships whose
  many side is the table; their columns come in as ``<prefix>.<column>``);
* which *child* tables a table has (relationships whose many side has a space of its own);
* whether the table gets a table embedding space, and a relational space (``relational_space: true``,
  or ``auto``: a target sits on it and it has children);
* which space each target's predictor sits on (the relational space when its table has one), and
  which other tables' rows that predictor reads;
* the asset keys of all of it.

The plan is frozen: it is built once when the code location loads and handed to everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import pandas as pd

from featrix_model.relationships import denormalise
from featrix_pipeline.spec import DatasetSpec, RelationshipSpec, TableSpec, TargetSpec

Key = tuple[str, ...]


@dataclass(frozen=True)
class TablePlan:
    """Everything decided about one table."""

    name: str
    spec: TableSpec
    lookups: tuple[RelationshipSpec, ...]  # dimension tables joined into this table's rows
    children: tuple[RelationshipSpec, ...]  # relationships whose many side is a child table with a space
    has_space: bool
    has_relational_space: bool
    targets: tuple[TargetSpec, ...]

    # ---------------------------------------------------------------- asset keys

    def key(self, stage: str) -> Key:
        """``(table, stage)``: raw, profile, filtered, embedding_space, row_embeddings, relational_space."""
        return (self.name, stage)

    @property
    def space_key(self) -> Key:
        """The space a predictor of this table sits on: the relational space when there is one."""
        return self.key("relational_space" if self.has_relational_space else "embedding_space")

    def describe(self) -> dict:
        """This table's part of the spec that decides its models: the table's declaration and the
        lookups and child relationships as declared (what a model key hashes, beside the data)."""
        def rel(r: RelationshipSpec) -> dict:
            return {**r.to_dict(), "lookup": r.lookup, "lookup_columns": list(r.lookup_columns)}

        t = self.spec
        return {"table": self.name, "primary_key": list(t.primary_key), "time_column": t.time_column,
                "exclude_columns": list(t.exclude_columns), "keep_columns": list(t.keep_columns),
                "cutoff_column": t.cutoff_column, "lookups": [rel(r) for r in self.lookups],
                "children": [rel(r) for r in self.children] if self.has_relational_space else []}

    @property
    def row_id(self) -> str | None:
        """A single-column primary key: it identifies rows and carries no shared structure, so no
        model of the table uses it as a feature (parts of a composite key are ordinary attributes)."""
        pk = self.spec.primary_key
        return pk[0] if len(pk) == 1 else None

    # ---------------------------------------------------------------- tables read

    @property
    def lookup_tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.parent for r in self.lookups))

    @property
    def child_tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.child for r in self.children))

    def column_source(self, column: str) -> tuple[str, str]:
        """(table, column) a model column comes from: a lookup column ``dest.lat`` from ``airports.lat``,
        any other from this table."""
        for r in self.lookups:
            prefix = f"{r.lookup_prefix}."
            if column.startswith(prefix):
                return r.parent, column[len(prefix):]
        return self.name, column

    def model_frame(self, frame: pd.DataFrame, rows: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        """``frame`` (rows of this table) with its lookups' columns joined in as ``<prefix>.<column>``:
        what every model of the table sees. ``rows``: the lookup tables' filtered rows. Row count and
        order never change (a many-to-one join; a lookup with repeated keys is refused)."""
        out = frame
        for r in self.lookups:
            if r.parent not in rows:
                raise KeyError(f"rows of '{self.name}' are joined with lookup table '{r.parent}' ({r.condition}), "
                               "whose rows were not given.")
            lookup = rows[r.parent]
            if r.lookup_columns:
                lookup = lookup[[*r.parent_keys, *[c for c in r.lookup_columns if c in lookup.columns]]]
            out = denormalise(out, [(r.to_model(r.lookup_prefix), r.lookup_prefix)], {r.parent: lookup})
        return out


@dataclass(frozen=True)
class TargetPlan:
    """A predictor: its target, the table it predicts for and the space it sits on."""

    target: TargetSpec
    table: TablePlan

    @property
    def name(self) -> str:
        return self.target.name

    def key(self, stage: str) -> Key:
        """``(target, stage)``: predictor, predictions."""
        return (self.target.name, stage)

    @property
    def space_key(self) -> Key:
        return self.table.space_key


@dataclass(frozen=True)
class Topology:
    spec: DatasetSpec
    tables: Mapping[str, TablePlan]
    targets: tuple[TargetPlan, ...]  # targets whose table has a space (the others get no predictor)

    @classmethod
    def from_spec(cls, spec: DatasetSpec) -> "Topology":
        plans = {}
        for name, t in spec.tables.items():
            lookups = tuple(r for r in spec.relationships if r.lookup and r.child == name and r.parent != name)
            children = tuple(r for r in spec.relationships if r.parent == name and r.child != name
                             and spec.tables[r.child].embedding_space)
            targets = tuple(spec.targets_of(name))
            wanted = t.relational_space is True or (t.relational_space == "auto" and bool(targets))
            plans[name] = TablePlan(name, t, lookups, children, t.embedding_space,
                                    bool(wanted and children and t.embedding_space), targets)
        targets = tuple(TargetPlan(t, plans[t.table]) for t in spec.targets if plans[t.table].has_space)
        return cls(spec, MappingProxyType(plans), targets)

    def __getitem__(self, table: str) -> TablePlan:
        return self.tables[table]

    @staticmethod
    def join_key(rel: RelationshipSpec) -> Key:
        """``(relationship, "join_report")``."""
        return (rel.name, "join_report")

    def group(self, item: RelationshipSpec | TargetPlan | str) -> str:
        """The Dagster asset group of a table's assets (its name), of a relationship's join report
        (the relationship's name) and of a target's predictor and predictions (the target's name):
        the UI draws a box titled with the group around its nodes, so each ``join_report`` and
        ``predictor`` box says which relationship or target it is without renaming asset keys. A
        name another group already uses gets ``_join`` / ``_predictor`` (then a number) appended."""
        if isinstance(item, str):
            return item
        return self._groups()[("target" if isinstance(item, TargetPlan) else "relationship", item.name)]

    def _groups(self) -> dict[tuple[str, str], str]:
        taken, out = set(self.tables), {}
        for kind, names, suffix in (("relationship", [r.name for r in self.spec.relationships], "_join"),
                                    ("target", [t.name for t in self.targets], "_predictor")):
            for name in names:
                group, n = name, 1
                while group in taken:
                    group, n = f"{name}{suffix}" + (str(n) if n > 1 else ""), n + 1
                taken.add(group)
                out[(kind, name)] = group
        return out

    def time_columns(self, rel: RelationshipSpec) -> tuple[str | None, str | None]:
        """(child, parent) time columns when both sides of ``rel`` have one (temporal join checks), else Nones."""
        child, parent = self.tables[rel.child].spec.time_column, self.tables[rel.parent].spec.time_column
        return (child, parent) if child and parent else (None, None)

    @property
    def relational(self) -> tuple[TablePlan, ...]:
        """Tables that get a relational space."""
        return tuple(p for p in self.tables.values() if p.has_relational_space)

    def reads(self, table: str) -> tuple[str, ...]:
        """Other tables whose filtered rows the models of ``table`` read: its lookups, and for a
        relational space its children and their lookups."""
        plan = self.tables[table]
        own = [*plan.lookup_tables]
        if plan.has_relational_space:
            for child in plan.child_tables:
                own += [child, *self.tables[child].lookup_tables]
        return tuple(t for t in dict.fromkeys(own) if t != table)

    def built_on(self, table: str) -> tuple[Key, ...]:
        """The model assets to retrain when ``table``'s space must be: the space and its row embeddings,
        the relational spaces it is the parent or a child of, and the predictors (and predictions) on
        any of those spaces."""
        plan = self.tables[table]
        keys = [plan.key("embedding_space"), plan.key("row_embeddings"), plan.key("drift")] if plan.has_space else []
        relational = [p for p in self.relational if p.name == table or table in p.child_tables]
        keys += [p.key("relational_space") for p in relational]
        spaces = {plan.space_key, *(p.key("relational_space") for p in relational)}
        keys += [k for t in self.targets if t.space_key in spaces for k in (t.key("predictor"), t.key("predictions"))]
        return tuple(dict.fromkeys(keys))

    def affected_by_schema(self, table: str) -> tuple[Key, ...]:
        """Everything to run again when ``table``'s columns change: its snapshot, profile and filter, the
        join reports it takes part in, and the models built on it or on a table it is looked up into."""
        plan = self.tables[table]
        keys = [plan.key(s) for s in ("raw", "profile", "filtered")]
        keys += [self.join_key(r) for r in self.spec.relationships if table in (r.child, r.parent)]
        readers = [t for t, p in self.tables.items() if table in p.lookup_tables]
        for t in (table, *readers):
            keys += self.built_on(t)
        return tuple(dict.fromkeys(keys))

    def model_tables(self, table: str, rows: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """The table's and its children's rows as its relational space sees them (lookups joined in);
        ``rows`` holds the filtered rows of those tables and of their lookup tables."""
        plan = self.tables[table]
        return {t: self.tables[t].model_frame(rows[t], rows) for t in [table, *plan.child_tables]}
