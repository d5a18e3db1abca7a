"""Schema changes of a warehouse table between two reads: added, removed and retyped columns.

    change = schema_changes("flights", before={"dep_delay": "DOUBLE"}, after={"dep_delay": "VARCHAR"})
    if change: log(change.message())

Types are the strings a warehouse reports (DuckDB ``BIGINT``, PostgreSQL ``character varying``).
They are compared after ``normalize_type``: lower case, whitespace collapsed, length/precision
parameters dropped (``VARCHAR(255)`` is ``VARCHAR``, ``DECIMAL(10,2)`` is ``DECIMAL``: the space
reads values, not declared widths), then the small synonym table ``SYNONYMS``. Widening
(``INTEGER`` → ``BIGINT``) is a change; so is ``TIMESTAMP`` → ``TIMESTAMP WITH TIME ZONE``. ``FLOAT``
is left alone on purpose: it is 4 bytes in DuckDB and 8 in PostgreSQL. Column names compare exactly;
their order is not a change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# canonical name → the spellings warehouses report for it (DuckDB, PostgreSQL, common aliases)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "smallint": ("smallint", "int2", "short"),
    "integer": ("integer", "int", "int4", "signed"),
    "bigint": ("bigint", "int8", "long"),
    "real": ("real", "float4"),
    "double": ("double", "float8", "double precision"),
    "decimal": ("decimal", "numeric"),
    "boolean": ("boolean", "bool", "logical"),
    "varchar": ("varchar", "text", "string", "character varying", "char", "character", "bpchar"),
    "timestamp": ("timestamp", "timestamp without time zone", "datetime"),
    "timestamptz": ("timestamptz", "timestamp with time zone"),
    "time": ("time", "time without time zone"),
    "timetz": ("timetz", "time with time zone"),
}
_CANONICAL = {alias: name for name, aliases in SYNONYMS.items() for alias in aliases}


def normalize_type(sql_type: str | None) -> str:
    """The comparable form of a warehouse type string (see the module doc)."""
    t = re.sub(r"\([^)]*\)", " ", str(sql_type or "")).lower()
    t = " ".join(t.split())
    return _CANONICAL.get(t, t)


@dataclass(frozen=True)
class SchemaChange:
    """How a table's columns changed; falsy when nothing did. Types are kept as the warehouse spelled them."""

    table: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: tuple[tuple[str, str, str], ...] = ()  # (column, type before, type after)
    added_types: tuple[str, ...] = ()  # the types of ``added``, in the same order
    removed_types: tuple[str, ...] = ()  # the types of ``removed``, in the same order

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.retyped)

    def message(self) -> str:
        """One sentence naming the table and every changed column with its types, and what happens next."""
        if not self:
            return f"Table {self.table}: no schema change (column order is not compared)."
        parts = []
        if self.removed:
            parts.append("removed " + ", ".join(f"{c} ({t})" for c, t in zip(self.removed, self._types(self.removed_types,
                                                                                                      self.removed))))
        if self.retyped:
            parts.append("retyped " + ", ".join(f"{c} {a} → {b}" for c, a, b in self.retyped))
        if self.added:
            parts.append("added " + ", ".join(f"{c} ({t})" for c, t in zip(self.added, self._types(self.added_types,
                                                                                                  self.added))))
        then = "its embedding space and everything built on it are retrained"
        if self.added:
            then += f", and the added column{'s are' if len(self.added) > 1 else ' is'} only used after that retrain"
        return f"Table {self.table} changed its schema: {'; '.join(parts)} — {then}."

    @staticmethod
    def _types(types: tuple[str, ...], columns: tuple[str, ...]) -> tuple[str, ...]:
        return types if len(types) == len(columns) else ("type unknown",) * len(columns)

    def to_dict(self) -> dict:
        return {"table": self.table, "changed": bool(self),
                "added": [{"column": c, "type": t} for c, t in zip(self.added, self._types(self.added_types, self.added))],
                "removed": [{"column": c, "type": t}
                            for c, t in zip(self.removed, self._types(self.removed_types, self.removed))],
                "retyped": [{"column": c, "before": a, "after": b} for c, a, b in self.retyped],
                "message": self.message()}


def schema_changes(table: str, before: dict[str, str], after: dict[str, str]) -> SchemaChange:
    """What changed from ``before`` to ``after`` ({column: warehouse type}). Added columns are listed
    in ``after``'s order, removed and retyped ones in ``before``'s."""
    added = tuple(c for c in after if c not in before)
    removed = tuple(c for c in before if c not in after)
    retyped = tuple((c, str(before[c]), str(after[c])) for c in before
                    if c in after and normalize_type(before[c]) != normalize_type(after[c]))
    return SchemaChange(table=table, added=added, removed=removed, retyped=retyped,
                        added_types=tuple(str(after[c]) for c in added),
                        removed_types=tuple(str(before[c]) for c in removed))
