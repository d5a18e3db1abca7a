"""Relationships between tables: one type, one SQL parser, one key-type check for the whole project.

A relationship says that rows of a *child* table point at one row each of a *parent* table through
equal key columns (``child_keys[i] = parent_keys[i]``). It is written as a SQL join condition —
``flights.tailnum = planes.tailnum``, composite keys joined with AND — and parsed with sqlglot, the
same way for a notebook call of ``RelationalSpace.fit`` and for a dataset spec (whose own
relationship type extends this one with its data-quality thresholds).

``denormalise`` joins many-to-one *lookup* tables (dimension tables such as airlines or airports)
into a table's rows: their columns come in as ``<name>.<column>``, row count and order unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd
import sqlglot
from sqlglot import exp

from featrix_model.keys import compatible, key_family
from featrix_model.types import INTERNAL_PREFIX

CARDINALITIES = ("many_to_one", "one_to_one", "one_to_many")
KEY_PREFIX = f"{INTERNAL_PREFIX}_key"  # temporary join-key names; never a user's column


@dataclass(frozen=True)
class Relationship:
    """``child`` rows point at one ``parent`` row each: ``child_keys[i] = parent_keys[i]``.

    ``cardinality`` is read left to right in ``condition`` (the SQL as written): ``one_to_many``
    means the first table named is the parent.
    """

    child: str
    parent: str
    child_keys: tuple[str, ...]
    parent_keys: tuple[str, ...]
    name: str = ""
    cardinality: str = "many_to_one"
    condition: str = ""

    @property
    def left(self) -> str:
        """The first table named in the condition."""
        return self.parent if self.cardinality == "one_to_many" else self.child

    @property
    def right(self) -> str:
        return self.child if self.cardinality == "one_to_many" else self.parent

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(child column, parent column) equalities, in condition order."""
        return tuple(zip(self.child_keys, self.parent_keys))

    @property
    def text(self) -> str:
        """The condition as written, or one built from the keys."""
        return self.condition or " AND ".join(f"{self.child}.{c} = {self.parent}.{p}" for c, p in self.pairs)

    def to_dict(self) -> dict:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(Relationship)}

    @classmethod
    def from_dict(cls, d: dict) -> "Relationship":
        """From ``to_dict`` output (artifacts saved before the key fields were renamed used
        ``child_cols``/``parent_cols``)."""
        return cls(d["child"], d["parent"], tuple(d.get("child_keys", d.get("child_cols"))),
                   tuple(d.get("parent_keys", d.get("parent_cols"))), d.get("name", ""),
                   d.get("cardinality", "many_to_one"), d.get("condition", ""))


class JoinSyntaxError(ValueError):
    """A join condition that is not one or more ``table.column = table.column`` equalities."""


@dataclass(frozen=True)
class JoinCondition:
    """A parsed join condition: the two tables in the order they are first named, and the
    (left column, right column) equalities."""

    left: str
    right: str
    pairs: tuple[tuple[str, str], ...]

    def relationship(self, cardinality: str, name: str = "", condition: str = "") -> Relationship:
        """The relationship this condition describes, read left to right with ``cardinality``."""
        if cardinality not in CARDINALITIES:
            raise ValueError(f"cardinality {cardinality!r} is not one of {', '.join(CARDINALITIES)}.")
        left_cols = tuple(a for a, _ in self.pairs)
        right_cols = tuple(b for _, b in self.pairs)
        if cardinality == "one_to_many":
            return Relationship(self.right, self.left, right_cols, left_cols, name, cardinality, condition)
        return Relationship(self.left, self.right, left_cols, right_cols, name, cardinality, condition)


def parse_join(condition: str) -> JoinCondition:
    """Parse ``a.x = b.y [AND a.z = b.w ...]`` with sqlglot; every equality relates the same two tables."""
    if len(condition) > 4_000 or condition.count("(") > 64:
        raise JoinSyntaxError(f"join condition {condition[:60]!r}... is too long or nests too deeply; write "
                              "table.column = table.column [AND ...].")
    try:
        statements = [s for s in sqlglot.parse(condition) if s is not None]
    except RecursionError:
        raise JoinSyntaxError(f"join condition {condition[:60]!r}... nests too deeply; write "
                              "table.column = table.column [AND ...].") from None
    except sqlglot.errors.SqlglotError as e:
        raise JoinSyntaxError(f"join condition {condition!r} is not valid SQL: {str(e).splitlines()[0]}. "
                              "Write it as table.column = table.column [AND ...].") from None
    if len(statements) != 1:
        raise JoinSyntaxError(f"join condition {condition!r} holds {len(statements)} statements; write one condition "
                              "(table.column = table.column [AND ...]) without ';'.")
    tree = statements[0]
    equalities = _flatten_and(tree)
    if not equalities or not all(isinstance(e, exp.EQ) for e in equalities):
        raise JoinSyntaxError(f"join condition {condition!r} must be one or more equalities joined by AND "
                              "(e.g. flights.origin = weather.origin AND flights.time_hour = weather.time_hour).")
    order: list[str] = []
    sides: list[tuple[tuple[str, str], tuple[str, str]]] = []
    for eq in equalities:
        cols = []
        for side in (eq.this, eq.expression):
            if not isinstance(side, exp.Column) or not side.table or not isinstance(side.this, exp.Identifier):
                raise JoinSyntaxError(f"in {condition!r}, {side.sql()!r} must be a qualified column (table.column).")
            if side.args.get("db") or side.args.get("catalog"):
                raise JoinSyntaxError(f"in {condition!r}, {side.sql()!r} names a schema: write table.column with the "
                                      "table's name as declared in the spec (its source says where it lives).")
            cols.append((side.table, side.name))
            if side.table not in order:
                order.append(side.table)
        if cols[0][0] == cols[1][0]:
            raise JoinSyntaxError(f"in {condition!r}, both sides of {eq.sql()!r} are in table '{cols[0][0]}'; "
                                  "a join relates two tables.")
        sides.append((cols[0], cols[1]))
    if len(order) != 2:
        raise JoinSyntaxError(f"join condition {condition!r} must relate exactly two tables, it names {order}.")
    left, right = order
    pairs = tuple((a[1], b[1]) if a[0] == left else (b[1], a[1]) for a, b in sides)
    return JoinCondition(left, right, pairs)


def _flatten_and(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Paren):
        return _flatten_and(node.this)
    if isinstance(node, exp.And):
        return _flatten_and(node.this) + _flatten_and(node.expression)
    return [node]


# ---------------------------------------------------------------------------------- against data


def parse_relationship(rel, tables: dict[str, pd.DataFrame]) -> Relationship:
    """A relationship checked against the tables' data, from a SQL join condition
    (``"flights.tailnum = planes.tailnum"``), a dict ``{"join": ..., "cardinality": ..., "name": ...}``
    or a ``Relationship``. Without a cardinality it is inferred from which side's key is unique."""
    if isinstance(rel, Relationship):
        for t in (rel.child, rel.parent):
            _need_table(rel.text, t, tables)
        check_key_types(rel.text, tables[rel.child][list(rel.child_keys)], tables[rel.parent][list(rel.parent_keys)])
        check_unique_parent(rel.text, tables[rel.parent], rel.parent, list(rel.parent_keys))
        return rel
    spec = {"join": rel} if isinstance(rel, str) else dict(rel)
    join = spec.get("join") or spec.get("on")
    if not join:
        raise ValueError(f"relationship {rel!r} has no join condition (e.g. \"child.key = parent.key\").")
    cond = parse_join(join)
    for t in (cond.left, cond.right):
        _need_table(join, t, tables)
    lcols, rcols = [a for a, _ in cond.pairs], [b for _, b in cond.pairs]
    for t, cols in ((cond.left, lcols), (cond.right, rcols)):
        missing = [c for c in cols if c not in tables[t].columns]
        if missing:
            raise KeyError(f"relationship {join!r}: table '{t}' has no column {missing}; its columns: {list(tables[t].columns)}.")
    check_key_types(join, tables[cond.left][lcols], tables[cond.right][rcols])
    card = spec.get("cardinality") or _infer_cardinality(join, tables[cond.left][lcols], tables[cond.right][rcols])
    out = cond.relationship(card, spec.get("name") or "", join)
    check_unique_parent(join, tables[out.parent], out.parent, list(out.parent_keys))
    return out


def _need_table(join: str, table: str, tables: dict) -> None:
    if table not in tables:
        raise KeyError(f"relationship {join!r} names table '{table}', which is not among the tables {sorted(tables)}.")


def _unique(df: pd.DataFrame) -> bool:
    return not df.dropna().duplicated().any()


def _infer_cardinality(join: str, left: pd.DataFrame, right: pd.DataFrame) -> str:
    if _unique(right):
        return "one_to_one" if _unique(left) else "many_to_one"
    if _unique(left):
        return "one_to_many"
    raise ValueError(f"relationship {join!r} is many-to-many (neither side's key is unique): aggregate it "
                     "through a bridge table, or declare which side is the parent.")


def check_unique_parent(join: str, frame: pd.DataFrame, parent: str, cols: list[str]) -> None:
    """A parent key must identify one parent row."""
    dup = frame[cols].dropna()
    dup = dup[dup.duplicated(keep=False)]
    if len(dup):
        raise ValueError(f"relationship {join!r}: parent table '{parent}' has {len(dup):,} rows with a repeated key "
                         f"{cols}, e.g. {dup.head(3).to_dict('records')}; a parent key must be unique.")


def check_key_types(join: str, a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Keys whose values can never compare equal (``1`` vs ``"1"``, a timestamp vs text) match nothing."""
    for ca, cb in zip(a.columns, b.columns):
        fa, fb = key_family(a[ca]), key_family(b[cb])
        for col, fam in ((ca, fa), (cb, fb)):
            if fam == "empty":
                raise TypeError(f"relationship {join!r}: key '{col}' holds only NULLs, so no row would match; "
                                "fill the key or leave the relationship out.")
        if not compatible(fa, fb):
            raise TypeError(f"relationship {join!r}: key '{ca}' is {fa} ({a[ca].dtype}) but '{cb}' is {fb} "
                            f"({b[cb].dtype}); no row would match. Cast one side so both keys have the same type.")


def lookups_of(table: str, rels: list[Relationship], skip: set[str]) -> list[tuple[Relationship, str]]:
    """Many-to-one relationships out of ``table`` into tables not in ``skip`` (the parent line), each
    with its column prefix: the relationship's name, else the lookup table, or the foreign key when one
    table is looked up twice (origin, dest)."""
    found = [r for r in rels if r.child == table and r.parent != table and r.parent not in skip]
    names = [r.parent for r in found]
    return [(r, r.name or (r.parent if names.count(r.parent) == 1 else "_".join(r.child_keys))) for r in found]


def denormalise(frame: pd.DataFrame, lookups: list[tuple[Relationship, str]], tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Join many-to-one lookup tables into ``frame``'s rows: their columns come in as
    ``<name>.<column>`` (the lookup's key columns are dropped: they equal the foreign key). The row
    count and order never change; an unmatched key gives missing values."""
    out = frame.reset_index(drop=True)
    for rel, name in lookups:
        if rel.parent not in tables:
            raise KeyError(f"lookup '{name}' needs table '{rel.parent}' ({rel.text}); pass it in tables.")
        lk = tables[rel.parent]
        parent_keys = list(rel.parent_keys)
        cols = [c for c in lk.columns if c not in parent_keys]
        keys = [f"{KEY_PREFIX}{i}" for i in range(len(parent_keys))]
        right = lk[parent_keys + cols].rename(columns={**dict(zip(parent_keys, keys)),
                                                      **{c: f"{name}.{c}" for c in cols}})
        right = right.dropna(subset=keys)
        dup = right[right.duplicated(subset=keys, keep=False)]
        if len(dup):
            raise ValueError(f"lookup '{name}' ({rel.text}): table '{rel.parent}' repeats key(s) "
                             f"{dup[keys].drop_duplicates().head(3).to_numpy().tolist()} in {parent_keys}; "
                             "a lookup joined into rows must have one row per key.")
        out = out.merge(right, how="left", left_on=list(rel.child_keys), right_on=keys, sort=False).drop(columns=keys)
    return out
