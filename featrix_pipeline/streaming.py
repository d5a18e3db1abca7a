"""Rows from a warehouse into one pandas frame by way of Arrow batches.

DuckDB hands its result over as an Arrow record-batch reader; a database driver's rows come through
a server-side cursor, ``BATCH_ROWS`` at a time, each batch turned into Arrow columns at once. So the
driver never buffers a whole table as Python tuples beside the frame built from them: at most one
batch of tuples exists at a time.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterable, Sequence

import pandas as pd
import pyarrow as pa

BATCH_ROWS = 50_000


def frame_from_reader(reader: pa.RecordBatchReader) -> pd.DataFrame:
    """All batches of an Arrow reader as one frame (column types as the warehouse gave them)."""
    return pa.Table.from_batches(list(reader), schema=reader.schema).to_pandas()


def frame_from_rows(names: Sequence[str], batches: Iterable[Sequence[Sequence]]) -> pd.DataFrame:
    """Rows fetched in batches (a driver's ``partitions``) as one frame: each column of each batch
    becomes an Arrow array; batches whose types differ only by nulls (an all-null batch) are
    promoted to the common type."""
    tables = [pa.Table.from_arrays([_array(column) for column in zip(*rows)], names=list(names))
              for rows in batches if len(rows)]
    if not tables:
        return pd.DataFrame({n: pd.Series([], dtype=object) for n in names}, columns=list(names))
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def _array(values: Sequence) -> pa.Array:
    """One batch of one column. Exact decimals become floats (as pandas reads them), UUIDs text,
    timestamps with a time zone UTC (the server's session zone is not the data's), and
    JSON values that Arrow cannot type as one struct or list type their JSON text."""
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, decimal.Decimal):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    if isinstance(sample, uuid.UUID):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    if isinstance(sample, dt.timedelta):
        return pa.array(values, type=pa.duration("us"))
    if isinstance(sample, dt.datetime) and sample.tzinfo is not None:  # one zone for the column: UTC
        return pa.array(values).cast(pa.timestamp("us", tz="UTC"))
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        if isinstance(sample, (dict, list)):
            return pa.array([None if v is None else json.dumps(v, sort_keys=True, default=str) for v in values],
                            type=pa.string())
        raise
