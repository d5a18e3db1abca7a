"""A parent table's child rows: which children each parent has, capped and dated, and what they say.

A ``ChildLink`` is one child relationship of a relational space: how its child rows are built
(lookups joined in), which space encodes them, how many a parent keeps and which numeric child
columns become per-parent statistics. Its ``ChildBank`` holds the child rows once encoded —
embeddings, keys, times, numeric values — as data, never as model state: it is built from the
child table whenever the space is attached to its tables (read from a saved copy when nothing it
follows from has changed, below).

Per parent (``ChildBank.select``): every child with the parent's key, in time order (the child's
time column, else table order); under a cutoff only children dated strictly before it; more than
``cap`` children are thinned to ``cap`` evenly spaced ones — a deterministic rule that never
duplicates a row — while counts and statistics use every child. Orphan children (null or
unmatched key) and parents without children are counted.

A bank encodes a child row the first time a parent needs it (``LazyEmbeddings``): a parent keeps
at most ``cap`` children and orphans belong to none, so most rows are never read (the demo's planes
read 142,198 of 336,776 flights), and encoding is row-wise, so a row encoded late has the bytes an
up-front pass would give it.

A saved relational space keeps each bank's rows encoded so far beside its child space
(``children/<link>.bank.safetensors``: a float32 row per child row, zeros where not encoded, and a
mask of the encoded ones) with a digest of all they follow from: the child space's codecs and
weights, the hidden columns, every value (with its Python type), column name and dtype of the child
rows, and the code and arithmetic that encode them (featrix_model's sources, the torch version, the
device, torch's thread count). Loading the space with tables that give the same digest reads those
rows instead of encoding them again (a predictor or its predictions loading the demo's planes
space); anything else is encoded as before. The file is a cache of what encoding would give, not
model state: deleting it changes nothing but time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from featrix_model.codecs.timestamp import parse_timestamps
from featrix_model.encoders.bank import _tensors
from featrix_model.io import hash_weights
from featrix_model.jsonable import to_jsonable
from featrix_model.relationships import Relationship, denormalise

STATISTICS = ("mean", "std", "min", "max")
log = logging.getLogger("featrix_model")


def time_ns(values: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch as floats (NaN for missing), for ordering and cutoffs."""
    t = parse_timestamps(values.reset_index(drop=True))[0]  # time zones and epoch numbers as for the codec
    ns = t.to_numpy(dtype="datetime64[ns]").view("int64").astype(float)
    ns[t.isna().to_numpy()] = np.nan
    return ns


class LazyEmbeddings:
    """(n, d) embeddings of a child table's rows, each row encoded by ``space`` (``hide`` hidden) the
    first time ``take`` asks for it. ``values``/``done``: rows read from a saved bank."""

    def __init__(self, frame: pd.DataFrame, space, hide: tuple[str, ...], values: np.ndarray | None = None,
                 done: np.ndarray | None = None):
        n = len(frame)
        self.frame, self.space, self.hide = frame.reset_index(drop=True), space, tuple(hide)
        self.values = np.zeros((n, space.d_model), np.float32) if values is None else values
        self.done = np.zeros(n, dtype=bool) if done is None else done
        self.shape, self.ndim = self.values.shape, 2
        self._weights, self._threads = self._state()

    def _state(self) -> tuple[tuple, int]:
        """The child net's weights key (``encoders.bank._tensors``: changes with any in-place update,
        replacement or move, without hashing the bytes) and the thread count."""
        return _tensors(list(self.space.net.modules())), torch.get_num_threads()

    def take(self, idx: np.ndarray) -> np.ndarray:
        """The embeddings of rows ``idx`` (any shape), encoding those not encoded yet."""
        idx = np.asarray(idx, dtype=np.int64)
        need = np.unique(idx[~self.done[idx]])
        if len(need):
            weights, threads = self._state()
            if weights != self._weights:  # rows encoded before and after would not be one bank
                raise RuntimeError("a child space's weights changed after its rows were attached to a relational "
                                   "space: attach the child tables again (RelationalSpace.attach).")
            if threads != self._threads:  # the thread count changes the bytes: encode as the bank began
                torch.set_num_threads(self._threads)
            try:
                self.values[need] = self.space.encode(self.frame.iloc[need].reset_index(drop=True), hide=self.hide)
            finally:
                torch.set_num_threads(threads)
            self.done[need] = True
            if self.done.all():  # nothing left to encode: the child rows need not stay in memory
                self.frame = self.frame.iloc[:0]
        return self.values[idx]

    def all(self) -> np.ndarray:
        """Every row's embedding (encodes what is left)."""
        return self.take(np.arange(len(self.done)))


@dataclass
class ChildBank:
    """One child table's rows for a relationship: their embeddings, keys, times and numeric values."""

    embeddings: LazyEmbeddings
    keys: pd.DataFrame
    times: np.ndarray | None
    stats: np.ndarray
    digest: str | None = None  # of the child rows the embeddings were encoded from (None: not saved)

    def _matches(self, parent_keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict]:
        """(child position, parent position) of every child whose key finds a parent, and orphan counts."""
        left = self.keys.copy()
        left.columns = [f"k{i}" for i in range(left.shape[1])]
        left["__pos"] = np.arange(len(left))
        null_key = int(left.drop(columns="__pos").isna().any(axis=1).sum())
        left = left.dropna()
        right = parent_keys.reset_index(drop=True).copy()
        right.columns = list(left.columns[:-1])
        right["__parent"] = np.arange(len(right))
        m = left.merge(right.dropna(), on=list(right.columns[:-1]), how="inner")
        pos, par = m["__pos"].to_numpy(), m["__parent"].to_numpy()
        info = {"children": int(len(self.keys)), "null_key": null_key,
                "unmatched_key": int(len(left) - pd.unique(pos).size), "after_cutoff": 0, "unknown_time": 0}
        return pos, par, info

    def select(self, parent_keys: pd.DataFrame, cutoff: np.ndarray | None, cap: int,
               statistics: tuple[str, ...] = ("mean",)):
        """Per parent row: (capped child positions, child count), ``{statistic: (n, stat columns)}`` over
        all its children (missing values skipped; NaN without any), and counts of what was left out."""
        n = len(parent_keys)
        pos, par, info = self._matches(parent_keys)
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
        selections = _capped(pos, counts, cap)
        stats = self._statistics(pos, par, n, statistics)
        info.update(parents=n, parents_without_children=int((counts == 0).sum()),
                    parents_capped=int((counts > cap).sum()), max_children=int(counts.max()) if n else 0,
                    median_children=float(np.median(counts)) if n else 0.0)
        return selections, counts, stats, info

    def _statistics(self, pos: np.ndarray, par: np.ndarray, n: int, statistics: tuple[str, ...]) -> dict:
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
        return stats


def _capped(pos: np.ndarray, counts: np.ndarray, cap: int) -> list:
    """Per parent (children grouped by parent in ``pos``): at most ``cap`` evenly spaced child
    positions and the full count, or None for a parent without children."""
    n = len(counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    i = np.arange(cap)
    take = np.where(counts[:, None] > cap, (i[None, :] * counts[:, None]) // cap, i[None, :])
    valid = i[None, :] < np.minimum(counts, cap)[:, None]
    chosen = pos[np.where(valid, starts[:, None] + take, 0).clip(max=max(len(pos) - 1, 0))] if len(pos) else \
        np.zeros((n, cap), dtype=np.int64)
    return [(chosen[r][valid[r]], int(counts[r])) if counts[r] else None for r in range(n)]


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
    space: object | None = None  # the child table's space (a table space, or a relational one at depth 2)
    bank: ChildBank | None = field(default=None, repr=False)

    @property
    def column(self) -> str:
        """The parent-space column that pools this link's children."""
        return f"{self.name}.children"

    def build_bank(self, tables: dict[str, pd.DataFrame], saved: Path | None = None) -> ChildBank:
        """The bank of the child table's rows, each encoded with the child space (join keys hidden) when
        a parent first needs it; ``saved``: the folder of a saved space's banks, whose encoded rows are
        read when its rows are these rows."""
        frame = denormalise(tables[self.rel.child], self.lookups, tables)
        # a relational child space's encodings also depend on its own child tables: never cached
        digest = None if hasattr(self.space, "links") else rows_digest(frame, self.hide, self.space)
        found = load_bank(saved, self.name, digest, len(frame), self.space.d_model) if saved is not None and digest \
            else None
        self.space.attach(tables)
        emb = LazyEmbeddings(frame, self.space, tuple(self.hide), *(found or (None, None)))
        gone = [c for c in self.stat_columns if c not in frame.columns]
        if gone:
            warnings.warn(f"'{self.rel.child}' rows lack column(s) {gone} that the relational space summarises per "
                          "parent: those summaries are encoded as missing until the space is retrained.", stacklevel=2)
        stats = np.column_stack([
            pd.to_numeric(frame[c], errors="coerce").astype("Float64").to_numpy(float, na_value=np.nan)
            if c in frame.columns else np.full(len(frame), np.nan) for c in self.stat_columns
        ]) if self.stat_columns else np.zeros((len(frame), 0))
        times = time_ns(frame[self.time_column]) if self.time_column else None
        self.bank = ChildBank(emb, frame[list(self.rel.child_keys)].reset_index(drop=True), times, stats, digest)
        return self.bank

    def aggregates(self, parents: pd.DataFrame, parent: str) -> tuple[dict[str, object], dict]:
        """This link's columns for ``parents`` (count, statistics, the children column) and its report."""
        missing = [c for c in self.rel.parent_keys if c not in parents.columns]
        if missing:
            raise KeyError(f"parent rows of '{parent}' need key column(s) {missing} to find their "
                           f"'{self.rel.child}' children ({self.rel.text}).")
        if self.cutoff and self.cutoff not in parents.columns:
            raise KeyError(f"parent rows of '{parent}' need the cutoff column '{self.cutoff}'.")
        cutoff = time_ns(parents[self.cutoff]) if self.cutoff else None
        sel, counts, stats, info = self.bank.select(parents[list(self.rel.parent_keys)], cutoff, self.cap,
                                                    self.statistics)
        cols: dict[str, object] = {f"{self.name}.count": counts.astype(float)}
        for j, c in enumerate(self.stat_columns):
            for s in self.statistics:
                cols[f"{self.name}.{c}.{s}"] = stats[s][:, j]
        cols[self.column] = pd.Series(sel, dtype=object)
        return cols, info

    def to_config(self) -> dict:
        return {"relationship": self.rel.to_dict(), "name": self.name, "time_column": self.time_column,
                "cutoff": self.cutoff, "cap": self.cap, "stat_columns": self.stat_columns, "hide": self.hide,
                "statistics": list(self.statistics),
                "lookups": [{"relationship": r.to_dict(), "name": n} for r, n in self.lookups]}

    @classmethod
    def from_config(cls, c: dict) -> "ChildLink":
        return cls(Relationship.from_dict(c["relationship"]), c["name"],
                   [(Relationship.from_dict(x["relationship"]), x["name"]) for x in c["lookups"]],
                   c["time_column"], c["cutoff"], c["cap"], c["stat_columns"], c["hide"],
                   tuple(c.get("statistics", ("mean",))))


BANK_KEY = "featrix-child-bank"  # the file's one metadata key (several are written in no fixed order): the digest


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """featrix_model's own sources (path and bytes) and the torch version."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256(torch.__version__.encode())
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _cells(col: pd.Series) -> pd.Series:
    """What a column's hash covers: cells of mixed types as type-tagged text (``True`` and ``'True'``,
    ``1.0`` and ``'1.0'`` hash apart, as the codecs tell them apart), categories as their values. An
    object column of strings only (the usual case) is hashed as it is: no Python per cell."""
    if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) not in ("string", "empty"):
        return col.map(lambda v: f"{type(v).__qualname__}:{v!r}")
    if isinstance(col.dtype, pd.CategoricalDtype):
        return _cells(col.astype(object))
    return col


def rows_digest(frame: pd.DataFrame, hide: list[str], space) -> str:
    """sha256 of what a bank's embeddings follow from (the module docstring)."""
    device = next(space.net.parameters()).device.type
    h = hashlib.sha256(json.dumps(to_jsonable([_code_digest(), device, torch.get_num_threads(),
                                               [str(c) for c in hide], space.plan.codecs_config()]),
                                  sort_keys=True).encode())
    hash_weights(h, space.net)
    for c in frame.columns:
        col = _cells(frame[c])
        try:
            values = pd.util.hash_pandas_object(col, index=False).to_numpy()
        except TypeError:  # unhashable cells (lists, dicts): hash their text
            values = pd.util.hash_pandas_object(col.map(repr), index=False).to_numpy()
        h.update(str(c).encode() + b"\0" + str(frame[c].dtype).encode() + b"\0")
        h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def save_bank(folder: Path, name: str, bank: ChildBank) -> None:
    """The bank's rows encoded so far (and which they are) with the digest of what they follow from,
    into a space folder being saved."""
    if bank.digest is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    emb = bank.embeddings
    save_file({"embeddings": torch.from_numpy(np.ascontiguousarray(emb.values, dtype=np.float32)),
               "encoded": torch.from_numpy(emb.done.astype(np.uint8))},
              str(folder / f"{name}.bank.safetensors"), metadata={BANK_KEY: bank.digest})


def load_bank(folder: Path, name: str, digest: str, rows: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A saved bank's (embeddings, which rows are encoded) when they follow from what gives ``digest``
    (else None: encode)."""
    file = folder / f"{name}.bank.safetensors"
    if not file.is_file():
        return None
    try:
        with safe_open(str(file), framework="pt") as f:
            if (f.metadata() or {}).get(BANK_KEY) != digest:
                return None
            emb, done = f.get_tensor("embeddings"), f.get_tensor("encoded")
    except Exception:  # safetensors' own errors: an unreadable cache is encoded again
        log.warning("%s cannot be read: the child rows are encoded again", file)
        return None
    if tuple(emb.shape) != (rows, width) or tuple(done.shape) != (rows,):
        return None
    return emb.numpy().copy(), done.numpy().astype(bool)


def with_children(frame: pd.DataFrame, links: list[ChildLink], parent: str) -> tuple[pd.DataFrame, dict]:
    """``frame`` (parent rows) plus every link's columns, and the per-link report."""
    out, report, extra = frame.reset_index(drop=True), {}, {}
    for link in links:
        cols, report[link.name] = link.aggregates(out, parent)
        extra.update(cols)
    return pd.concat([out, pd.DataFrame(extra, index=out.index)], axis=1), report
