"""Keys as integer codes, the match they give, and the example rows the checks show.

Each (possibly composite) key is factorised into one integer code per row, on both sides at once,
so that equal code ⇔ equal key. Everything the checks need (which child rows find a parent, how
many parents each key has, how many children) is then bincount arithmetic on those codes, computed
once in ``match_keys`` and shared through a ``KeyMatch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from sqlglot import exp

from featrix_model.jsonable import to_jsonable

MAX_EXAMPLES = 10

# (child series, parent series, compatible): one comparable key pair, as featrix_model.keys.comparable gives it
KeyPair = tuple[pd.Series, pd.Series, bool]



def factorize(s: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes (-1 for NULL) and the number of distinct values; unhashable values go by their text."""
    try:
        codes, uniques = pd.factorize(s)
    except TypeError:  # unhashable values
        codes, uniques = pd.factorize(s.astype(str).where(s.notna()))
    return codes.astype(np.int64), len(uniques)


def key_codes(pairs: Sequence[KeyPair]) -> tuple[np.ndarray, np.ndarray, int]:
    """One integer code per row for the (composite) key, -1 where any part is NULL; equal code ⇔ equal key.

    Returns child codes, parent codes and the number of codes. Pairs marked incompatible get codes
    that can never match (a type mismatch matches nothing, as in a warehouse).
    """
    combined = None
    for c, p, compatible in pairs:
        if compatible:
            codes, n = factorize(pd.concat([c, p], ignore_index=True))
        else:
            cc, nc = factorize(c)
            pc, n = factorize(p)
            codes, n = np.concatenate([np.where(cc >= 0, cc + n, -1), pc]), n + nc
        if combined is None:
            combined = codes
        else:
            null = (combined < 0) | (codes < 0)
            vals = combined * max(n, 1) + codes
            combined = np.full(len(vals), -1, dtype=np.int64)
            combined[~null] = pd.factorize(vals[~null])[0]
    nc = len(pairs[0][0])
    return combined[:nc], combined[nc:], int(max(combined.max(initial=-1) + 1, 1))


@dataclass(frozen=True, eq=False)
class KeyMatch:
    """How the child rows find their parents, computed once and read by every check.

    Codes are per row (-1: a NULL in the key); counts are per key code.
    """

    child_codes: np.ndarray
    parent_codes: np.ndarray
    k: int  # number of key codes
    keyed: np.ndarray  # child rows whose key has no NULL part
    parent_counts: np.ndarray  # parent rows per key
    child_counts: np.ndarray  # child rows per key
    per_row: np.ndarray  # parent rows each child row matches (0 for a NULL key)
    matched: np.ndarray  # child rows that find at least one parent

    @property
    def orphan(self) -> np.ndarray:
        """Child rows with a non-NULL key that finds no parent."""
        return self.keyed & ~self.matched

    @property
    def n_child(self) -> int:
        return len(self.child_codes)

    @property
    def n_keyed(self) -> int:
        return int(self.keyed.sum())

    @property
    def n_matched(self) -> int:
        return int(self.matched.sum())

    @property
    def coverage(self) -> float:
        """Share of child rows with a non-NULL key that find a parent."""
        return self.n_matched / self.n_keyed if self.n_keyed else 0.0

    @property
    def coverage_all_rows(self) -> float:
        """Share of all child rows that find a parent."""
        return self.n_matched / self.n_child if self.n_child else 0.0

    def coverage_with(self, pairs: Sequence[KeyPair]) -> float:
        """The coverage these same keyed child rows would get with the keys rewritten as ``pairs``
        (after a CAST, or after trimming and upper-casing strings)."""
        cc, pc, kk = key_codes(pairs)
        hit = (np.bincount(pc[pc >= 0], minlength=kk)[np.maximum(cc, 0)] > 0) & (cc >= 0)  # a value the
        # cast turns into NULL matches nothing
        return float((hit & self.keyed).sum() / self.n_keyed) if self.n_keyed else 0.0


def match_keys(pairs: Sequence[KeyPair]) -> KeyMatch:
    """Code the key pairs and count, per key, the parent and child rows that hold it."""
    child_codes, parent_codes, k = key_codes(pairs)
    keyed = child_codes >= 0
    parent_counts = np.bincount(parent_codes[parent_codes >= 0], minlength=k)
    child_counts = np.bincount(child_codes[keyed], minlength=k)
    per_row = np.where(keyed, parent_counts[np.maximum(child_codes, 0)], 0)
    return KeyMatch(child_codes, parent_codes, k, keyed, parent_counts, child_counts, per_row, matched=per_row > 0)


def first_rows(df: pd.DataFrame, codes: np.ndarray, wanted: Sequence[int],
               mask: np.ndarray | None = None) -> pd.DataFrame:
    """The first row of ``df`` holding each wanted key code (in the order given)."""
    idx = np.flatnonzero(mask) if mask is not None else np.arange(len(codes))
    first = pd.Series(idx, index=codes[idx])
    first = first[~first.index.duplicated()]
    return df.iloc[first.loc[list(wanted)].to_numpy()]


def context_columns(df: pd.DataFrame, keys: Sequence[str], time_column: str | None,
                    primary_key: Sequence[str] = ()) -> list[str]:
    """Columns to show in example rows: the key columns, the table's own primary key (what names a
    row whose key is NULL), the time column, then up to four others (strings and integers first: ids
    and categories say more about a row than measurements)."""
    def rank(c: str) -> int:
        t = df[c].dtype
        return 0 if pd.api.types.is_string_dtype(t) else 1 if pd.api.types.is_integer_dtype(t) else 2

    pk = [c for c in primary_key if c in df.columns]
    shown = {*keys, *pk, time_column}
    others = sorted((c for c in df.columns if c not in shown), key=rank)[:4]
    return list(dict.fromkeys([*keys, *pk, *([time_column] if time_column in df.columns else []), *others]))


def example_rows(df: pd.DataFrame, n: int = MAX_EXAMPLES) -> list[dict]:
    """The first ``n`` rows of ``df`` as JSON-ready dicts."""
    return to_jsonable(df.head(n).to_dict("records"))


def sample_values(s: pd.Series, n: int = 3, mask=None) -> str:
    """A few distinct values of ``s`` for prose (strings quoted), or "only NULLs"; ``mask`` (a
    function of one value) hides personal data."""
    vals = s.head(5000).dropna().drop_duplicates().head(n).tolist()
    vals = [mask(v) for v in vals] if mask else vals
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in vals) or "only NULLs"


def pct(x: float) -> str:
    return f"{x:.1%}"


def sql_column(table: str, column: str) -> exp.Column:
    """``table.column`` as a sqlglot column, quoted where the names need it."""
    return exp.column(exp.to_identifier(column), table=exp.to_identifier(table))


def sql_text(e: exp.Expression) -> str:
    """An expression as SQL text for messages (DuckDB dialect, the demo warehouse's)."""
    return e.sql(dialect="duckdb")


def show_key(values: Sequence) -> str:
    """A key for prose: composite parts joined by '/', strings with stray whitespace quoted."""
    return "/".join(repr(v) if isinstance(v, str) and v != v.strip() else str(v) for v in values)
