"""Incremental scoring: which rows of a table need a (new) prediction.

Each prediction row is stored with the content hash of the row it was computed from
(``HASH_COLUMN``) and the model version. A refresh hashes the rows as they are now, compares them
by key with the stored predictions (``plan_scoring``), scores only the rows that are new, changed or
scored by another model version, and writes back the kept rows plus the new ones (``merged``).

Hashes are built from canonical forms of the values, not from their pandas dtypes, so a column
that comes back as ``Int32`` from the warehouse and ``int64`` from a Parquet file, or as
``datetime64[us]`` and ``datetime64[ns]``, hashes (and matches as a key) the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

HASH_COLUMN = "row_hash"
VERSION_COLUMN = "model_version"
_NULL = np.uint64(0x9E3779B97F4A7C15)  # stands for a missing number / time in the canonical form
_INT_LIMIT = 2.0 ** 63
_EXTRA_NAME = "\x00extra"  # the pseudo-column `extra` is hashed under; no real column has this name


# ------------------------------------------------------------------ canonical values


def _canonical(values: pd.Series) -> np.ndarray:
    """The column's values in a dtype-independent form: ``uint64`` for numbers, booleans, times and
    durations (missing → a fixed sentinel), else an object array of ``str`` / ``None``.
    An integral float is the same integer (``1.0`` ≡ ``1``), so a column that turns float when a
    null appears keeps its hashes; times are UTC nanoseconds whatever the stored unit."""
    s = pd.Series(values).reset_index(drop=True)
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        s = s.astype(object)
        dtype = s.dtype
    if dtype == object:
        inferred = s.infer_objects()  # Python ints / floats / bools / datetimes in an object column
        if inferred.dtype != object and not pd.api.types.is_string_dtype(inferred.dtype):
            return _canonical(inferred)
    missing = s.isna().to_numpy(dtype=bool)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        target = "uint64" if pd.api.types.is_unsigned_integer_dtype(dtype) else "int64"
        out = s.to_numpy(dtype=target, na_value=0).view("uint64").copy()
    elif pd.api.types.is_float_dtype(dtype):
        f = s.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            integral = np.isfinite(f) & (f == np.trunc(f)) & (np.abs(f) < _INT_LIMIT)
        out = np.where(integral, np.where(integral, f, 0.0).astype("int64").view("uint64"),
                       (f + 0.0).view("uint64"))  # + 0.0 turns -0.0 into 0.0 (integral anyway)
    elif pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        if isinstance(dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        unit = "datetime64[ns]" if pd.api.types.is_datetime64_any_dtype(s.dtype) else "timedelta64[ns]"
        try:
            out = s.astype(unit).to_numpy().view("int64").view("uint64").copy()
        except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta):
            return _as_strings(s, missing)  # outside the nanosecond range: hash the text instead
    else:
        return _as_strings(s, missing)
    out[missing] = _NULL
    return out


def _as_strings(s: pd.Series, missing: np.ndarray) -> np.ndarray:
    obj = s.astype(object).to_numpy(copy=True)
    obj[missing] = None
    if pd.api.types.infer_dtype(obj, skipna=True) not in ("string", "empty"):
        present = ~missing
        obj[present] = [v if isinstance(v, str) else str(v) for v in obj[present]]
    return obj


def _hash_values(canonical: np.ndarray) -> np.ndarray:
    """uint64 hash per value of a canonical array (fixed key: the same in every process)."""
    series = pd.Series(canonical, dtype="uint64" if canonical.dtype == np.uint64 else object, copy=False)
    return pd.util.hash_pandas_object(series, index=False).to_numpy()


def _name_hash(name: object) -> np.uint64:
    return _hash_values(np.array([str(name)], dtype=object))[0]


def _combine(columns: list[tuple[object, np.ndarray]], n: int) -> np.ndarray:
    """One uint64 per row from (name, canonical values) pairs, in the order given."""
    if not columns:
        return np.full(n, _name_hash(""), dtype="uint64")
    hashed = pd.DataFrame({i: _hash_values(values) ^ _name_hash(name) for i, (name, values) in enumerate(columns)})
    return pd.util.hash_pandas_object(hashed, index=False).to_numpy()


def _hex(h: np.ndarray) -> np.ndarray:
    """uint64 → 16-character lower-case hex strings, vectorised."""
    if len(h) == 0:
        return np.array([], dtype=object)
    text = h.astype(">u8").tobytes().hex().encode("ascii")
    return np.frombuffer(text, dtype="S16").astype(str).astype(object)


def _row_hash_u64(frame: pd.DataFrame, extra: pd.Series | None = None) -> np.ndarray:
    order = sorted(range(frame.shape[1]), key=lambda i: (str(frame.columns[i]), i))
    columns = [(frame.columns[i], _canonical(frame.iloc[:, i])) for i in order]
    if extra is not None:
        extra = pd.Series(np.asarray(extra, dtype=object) if not isinstance(extra, pd.Series) else extra)
        if len(extra) != len(frame):
            raise ValueError(f"extra has {len(extra)} values for {len(frame)} rows")
        columns.append((_EXTRA_NAME, _canonical(extra)))
    return _combine(columns, len(frame))


# ------------------------------------------------------------------ public hashes


def row_hashes(frame: pd.DataFrame, extra: pd.Series | None = None) -> pd.Series:
    """A stable content hash per row (16 hex characters) from every column's name and value, the
    columns taken in name order (so a reordered ``SELECT *`` hashes the same), optionally mixed
    with ``extra`` (one value per row, by position: e.g. ``group_hashes`` of a parent's child rows;
    a missing value is a value of its own). Equal rows get equal hashes in any process and any
    row order; the index is not hashed."""
    return pd.Series(_hex(_row_hash_u64(frame, extra)), index=frame.index, name=HASH_COLUMN, dtype=object)


def group_hashes(frame: pd.DataFrame, key_columns: list[str]) -> pd.DataFrame:
    """One content hash per key: the wrapping sum of its rows' hashes mixed with their count, so
    adding, removing or changing one row changes it and the order of the rows does not. Returns
    the key columns (each key's first row's values) + ``HASH_COLUMN``, in key order."""
    key_columns = list(key_columns)
    if len(frame) == 0:
        return pd.DataFrame({**{k: frame[k].iloc[:0] for k in key_columns},
                             HASH_COLUMN: pd.Series([], dtype=object)})
    h = _row_hash_u64(frame)
    canon = pd.DataFrame({i: _canonical(frame[k]) for i, k in enumerate(key_columns)})
    codes = canon.groupby(list(canon.columns), sort=True, dropna=False).ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    sums = np.add.reduceat(h[order], starts, dtype="uint64")  # wraps modulo 2**64
    counts = np.diff(np.r_[starts, len(order)]).astype("uint64")
    mixed = _combine([("sum", sums), ("count", counts)], len(sums))
    out = frame[key_columns].iloc[order[starts]].reset_index(drop=True)
    out[HASH_COLUMN] = _hex(mixed)
    return out


# ------------------------------------------------------------------ plan


@dataclass(frozen=True, eq=False)
class ScoringPlan:
    """What a refresh must do. ``to_score`` is a mask over the current rows (by position)."""

    to_score: np.ndarray
    keep: pd.DataFrame
    removed: int
    key_columns: tuple[str, ...] = ()
    new: int = 0  # keys not in the stored predictions
    changed: int = 0  # stored, but the row's content hash differs
    new_model_version: int = 0  # same content, scored by another model version
    stored: int = 0  # rows of the stored predictions table
    notes: tuple[str, ...] = field(default=())

    def nothing_to_do(self) -> bool:
        return not bool(self.to_score.any()) and self.removed == 0

    def summary(self) -> dict:
        return {"current": int(len(self.to_score)), "to_score": int(self.to_score.sum()), "new": self.new,
                "changed": self.changed, "new_model_version": self.new_model_version,
                "kept": int(len(self.keep)), "removed": int(self.removed), "stored": self.stored,
                "notes": list(self.notes)}


def _key_index(frame: pd.DataFrame, key_columns: list[str]) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([_canonical(frame[k]) for k in key_columns])


def plan_scoring(current: pd.DataFrame, key_columns: list[str], existing: pd.DataFrame | None,
                 model_version: str) -> ScoringPlan:
    """Compare the rows as they are now (``current``: key columns + ``HASH_COLUMN``) with the stored
    predictions (``existing``: key columns + ``HASH_COLUMN`` + ``model_version`` + prediction
    columns; None when there is no table yet). Keys are matched on canonical values, so a stored
    ``TIMESTAMP`` key read back in another unit, or an ``INTEGER`` read back as ``Int32``, still
    matches. A stored table without a hash or version column (written before incremental runs)
    is rescored in full; duplicate stored keys keep their first row and count the others as removed."""
    key_columns = list(key_columns)
    n = len(current)
    missing = [c for c in [*key_columns, HASH_COLUMN] if c not in current.columns]
    if missing:
        raise ValueError(f"current rows lack column(s) {missing}: pass the key columns and row_hashes()")
    empty_keep = existing.iloc[:0] if existing is not None else pd.DataFrame(columns=[*key_columns, HASH_COLUMN])
    if existing is None or len(existing) == 0:
        return ScoringPlan(np.ones(n, dtype=bool), empty_keep, 0, tuple(key_columns), new=n)
    notes = []
    lacking = [c for c in key_columns if c not in existing.columns]
    if lacking:
        notes.append(f"stored predictions lack key column(s) {lacking}: every row is scored again")
        return ScoringPlan(np.ones(n, dtype=bool), empty_keep, len(existing), tuple(key_columns), new=n,
                           stored=len(existing), notes=tuple(notes))
    existing = existing.reset_index(drop=True)
    stored_index = _key_index(existing, key_columns)
    first = ~stored_index.duplicated(keep="first")
    unique_rows = np.flatnonzero(first)
    pos = stored_index[first].get_indexer(_key_index(current, key_columns))
    found = pos >= 0
    rows = np.where(found, unique_rows[np.where(found, pos, 0)], 0)  # stored row of each current row

    def stored_values(column: str) -> np.ndarray:
        if column not in existing.columns:
            notes.append(f"stored predictions have no `{column}` column: every row is scored again")
            return np.full(n, None, dtype=object)
        values = existing[column]
        values = values.where(values.isna(), values.astype(str)).astype(object)
        return values.to_numpy()[rows]

    cur_hash = current[HASH_COLUMN].astype(str).to_numpy(dtype=object)
    same_hash = found & (stored_values(HASH_COLUMN) == cur_hash)
    same_version = found & (stored_values(VERSION_COLUMN) == str(model_version))
    valid = same_hash & same_version
    kept_rows = np.unique(rows[valid])
    replaced = np.unique(rows[found])
    return ScoringPlan(to_score=~valid, keep=existing.iloc[kept_rows].reset_index(drop=True),
                       removed=int(len(existing) - len(replaced)), key_columns=tuple(key_columns),
                       new=int((~found).sum()), changed=int((found & ~same_hash).sum()),
                       new_model_version=int((same_hash & ~same_version).sum()), stored=int(len(existing)),
                       notes=tuple(notes))


def merged(plan: ScoringPlan, scored: pd.DataFrame) -> pd.DataFrame:
    """The full new predictions table: the kept rows plus the newly scored ones (the rows of
    ``plan.to_score``, with their ``HASH_COLUMN`` and model version), in the columns of ``scored``
    (kept rows are cast to ``scored``'s dtypes where they allow it), sorted by the key columns, so
    the result does not depend on which rows were rescored. When nothing was scored, ``scored`` may
    be an empty frame without columns; the kept rows' columns are used."""
    expected = int(plan.to_score.sum())
    if len(scored) != expected:
        raise ValueError(f"{len(scored)} scored rows for a plan that scores {expected}")
    lacking = [c for c in (*plan.key_columns, HASH_COLUMN, VERSION_COLUMN) if len(scored) and c not in scored.columns]
    if lacking:
        raise ValueError(f"scored rows lack column(s) {lacking}: add row_hashes() and the model version before merging")
    if len(scored) == 0 and len(scored.columns) == 0:
        out = plan.keep.copy()
    else:
        columns = list(scored.columns)
        keep = plan.keep.reindex(columns=columns)
        if len(scored):
            for c in columns:
                if keep[c].dtype != scored[c].dtype:
                    try:
                        keep[c] = keep[c].astype(scored[c].dtype)
                    except (TypeError, ValueError):
                        pass  # e.g. a missing value the scored dtype cannot hold: concat unifies them
        parts = [f for f in (keep, scored) if len(f)]
        out = pd.concat(parts, ignore_index=True) if parts else scored.iloc[:0].copy()
    keys = [k for k in plan.key_columns if k in out.columns]
    if keys and len(out):
        out = out.sort_values(keys, kind="mergesort", na_position="last")
    return out.reset_index(drop=True)
