"""A database's rows into one pandas frame by way of Arrow batches.

A driver's rows come through a server-side cursor, ``BATCH_ROWS`` at a time, and each batch is
turned into Arrow columns at once, so the driver never buffers a whole table as Python tuples
beside the frame built from them: at most one batch of tuples exists at a time (measured on the
demo's 336,776 flights from PostgreSQL: 347-360 MB peak against 772 MB for ``pandas.read_sql``,
``bench/warehouse_reads.py``).

A column Arrow cannot give one type — SQLite's mixed values, PostgreSQL's ``inet`` or ranges,
JSON whose shape changes between batches, integers beyond 64 bits — is kept as Python objects,
as ``pandas.read_sql`` keeps it, never refused.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable, Sequence

import pandas as pd
import pyarrow as pa

BATCH_ROWS = 50_000
_UNTYPABLE = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError, ValueError)


def frame_from_rows(names: Sequence[str], batches: Iterable[Sequence[Sequence]]) -> pd.DataFrame:
    """Rows fetched in batches (a driver's ``partitions``) as one frame, columns in ``names`` order."""
    arrays: list[list[pa.Array]] = [[] for _ in names]
    objects: dict[int, list] = {}  # columns kept as Python values, from their first untypable batch on
    for rows in batches:
        for i, values in enumerate(zip(*rows)) if len(rows) else ():
            if i in objects:
                objects[i].extend(values)
                continue
            try:
                arrays[i].append(_array(values))
            except _UNTYPABLE:
                objects[i] = [v for a in arrays[i] for v in a.to_pylist()] + [_value(v) for v in values]
                arrays[i] = []
    columns = []
    for i, name in enumerate(names):
        if i in objects:
            columns.append(pd.Series(objects[i], dtype=object, name=name))
        else:
            columns.append(_series(arrays[i], name))
    if not columns:
        return pd.DataFrame()
    return pd.concat(columns, axis=1)


def _series(arrays: list[pa.Array], name: str) -> pd.Series:
    """One column's batches as one series: batches that differ only by nulls (an all-null batch)
    are promoted to the common type; batches with types that do not unify become Python objects."""
    if not arrays:
        return pd.Series([], dtype=object, name=name)
    types = {a.type for a in arrays}
    if len(types) > 1:
        try:
            common = pa.unify_schemas([pa.schema([pa.field("c", t)]) for t in types],
                                      promote_options="permissive").field("c").type
            arrays = [a.cast(common) for a in arrays]
        except _UNTYPABLE:
            return pd.Series([v for a in arrays for v in a.to_pylist()], dtype=object, name=name)
    return pa.chunked_array(arrays).to_pandas().rename(name)


def _value(v):
    """One value as ``_array`` turns it (so a column that falls back keeps one kind of value)."""
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.timezone.utc)
    return v


def _array(values: Sequence) -> pa.Array:
    """One batch of one column. Exact decimals become floats (as pandas reads them), UUIDs text,
    timestamps with a time zone UTC (the server's session zone is not the data's); JSON documents
    (dicts, lists) are left to the object path, whole, whatever their shape."""
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, decimal.Decimal):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    if isinstance(sample, uuid.UUID):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    if isinstance(sample, dt.timedelta):
        return pa.array(values, type=pa.duration("us"))
    if isinstance(sample, dt.datetime) and sample.tzinfo is not None:  # one zone for the column: UTC
        return pa.array(values).cast(pa.timestamp("us", tz="UTC"))
    if isinstance(sample, (dict, list)):  # JSON documents stay Python values, as the driver gave them
        raise TypeError("JSON values are kept as they are")
    return pa.array(values)
