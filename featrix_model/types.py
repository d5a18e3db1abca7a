"""Semantic type detection for table columns (pure modelling library: no Dagster, no pipeline).

Types follow the encoder vocabulary of spec §5 (§5.1 scalar, §5.2 string, §5.3 set, §5.4
timestamp, §5.5 domain / URL / vector / JSON) plus ``boolean``, ``email``, ``identifier`` and
``empty``. Detection works from the VALUES; the column name is only a tie-breaker for small
integer columns. Rules, in the order they are tried:

* empty - every value is null (NULL, NaN, ±inf in a number column, or an empty/blank string: spec
  §1.4 "Missing Values (NULLs, NaNs, Empty Strings)"; ±inf counts as missing in every profile).
* boolean - bool dtype, or exactly two distinct values forming one of the pairs true/false,
  yes/no, 0/1, t/f, y/n (case-insensitive). A 0/1 integer column is boolean.
* timestamp - datetime dtype, or strings of which >= 90% of a sample parse as dates (ISO 8601
  first, then mixed formats for strings that look like dates; plain numbers never count).
* numbers - numeric dtype, or strings of which the majority parse as numbers. Spec §1.4 "Mixed
  Data Types in Columns": "A column labeled 'age' contains 25, 'thirty', NULL, 999 ... Featrix
  detects the majority type (scalar), parses what it can, and flags outliers" - the count and
  examples of unparseable values go into ``stats``. Integer columns with 2 to
  ``SMALL_INT_LEVELS`` (5) distinct values that recur (each seen twice on average) are ``set``
  (engines 1-4, ratings 1-5); more levels stay ``scalar`` (month 1-12, hour 0-23). With <= 50
  recurring levels, a name that says "code", "type", "category", "class", "kind", "status" or
  "zip" also makes it a set (the name tie-breaker).
  Integers of which >= 80% have 19 digits and >= 95% are distinct are snowflake ``identifier``s.
* email / url / domain - >= 80% of a sample match the pattern (URL: http/https/ftp scheme or
  ``www.``; domain: host names with an alphabetic TLD, no spaces, no ``@``).
* json / vector - strings starting with ``{`` or ``[`` that ``json.loads`` into dict/list on
  >= 80% of a sample; lists of numbers of one length >= 2 (or list/ndarray values) are vectors.
* identifier - >= 95% distinct and >= 80% of a sample look like random IDs: UUID (8-4-4-4-12 hex),
  32/40/64-hex digests, 19-digit snowflakes, random alphanumeric tokens (>= 16 chars).
* set / string - ``set`` when there are <= 50 distinct values, when values repeat >= 20 times on
  average (<= 5% distinct), or when short codes without spaces (mean length <= 12, e.g. tail
  numbers) are <= 50% distinct; otherwise ``string``.

Null and unique ratios are computed on the whole column; pattern tests use a seeded sample of
``SAMPLE_SIZE`` non-null values, so profiling is deterministic and fast on large tables.
The useless-column scorer (spec §16) builds on these profiles in :mod:`featrix_model.usefulness`
(one way: usefulness imports types, never the reverse).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from featrix_model.jsonable import to_jsonable

SAMPLE_SIZE = 2000
SEED = 0  # profiling is analysis, not training: the same sample whatever seed a model is fitted with
INTERNAL_PREFIX = "__featrix"  # columns named so are the project's own metadata, never features
SMALL_INT_LEVELS = 5
SET_MAX_LEVELS = 50
_BOOL_PAIRS = [{"true", "false"}, {"yes", "no"}, {"0", "1"}, {"t", "f"}, {"y", "n"}]
_CATEGORICAL_NAME = re.compile(r"(code|type|category|class|kind|status|zip)", re.I)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
HEX_HASH_RE = re.compile(r"^(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64})$", re.I)
SNOWFLAKE_RE = re.compile(r"^[1-9]\d{18}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]{16,}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+'\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}$")
URL_RE = re.compile(r"^(?:(?:https?|ftp)://[^\s/$.?#][^\s]*|www\.[^\s.]+\.[^\s]+)$", re.I)
DOMAIN_RE = re.compile(r"^(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+([a-z]{2,24})$", re.I)
_FILE_EXTS = {"py", "js", "md", "sh", "rs", "ts", "cs", "go", "rb", "pl", "txt", "csv", "pdf", "jpg",
              "png", "gif", "doc", "xls", "zip", "exe", "json", "html", "htm", "xml", "yaml", "yml"}
_DATEISH_RE = re.compile(
    r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|[A-Za-z]{3,9}\.? \d{1,2},? \d{2,4}|\d{1,2} [A-Za-z]{3,9}\.? \d{2,4}")
_LEADING_ZERO_RE = re.compile(r"^[+-]?0\d")


class SemanticType(str, Enum):
    SCALAR = "scalar"
    SET = "set"
    STRING = "string"
    TIMESTAMP = "timestamp"
    BOOLEAN = "boolean"
    EMAIL = "email"
    DOMAIN = "domain"
    URL = "url"
    JSON = "json"
    VECTOR = "vector"
    IDENTIFIER = "identifier"
    EMPTY = "empty"


@dataclass
class ColumnProfile:
    """What one column holds. ``unique_ratio`` is distinct / non-null values (0 when empty)."""

    name: str
    semantic_type: SemanticType
    dtype: str
    n_rows: int
    null_ratio: float
    n_unique: int
    unique_ratio: float
    examples: list[str] = field(default_factory=list)
    type_reason: str = ""
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["semantic_type"] = self.semantic_type.value
        return to_jsonable(d)

    @classmethod
    def from_dict(cls, d: dict) -> "ColumnProfile":
        """From ``to_dict`` output (extra keys, such as a pipeline's column role, are ignored)."""
        names = {f.name for f in fields(cls)}
        kept = {k: v for k, v in d.items() if k in names}
        return cls(**{**kept, "semantic_type": SemanticType(d["semantic_type"])})


# ---------------------------------------------------------------- helpers

def _is_listlike(v: Any) -> bool:
    return isinstance(v, (list, tuple, np.ndarray))


def non_null(values: pd.Series) -> pd.Series:
    """Drop NULL/NaN, blank strings (spec §1.4 treats empty strings as missing) and ±inf (float dtypes)."""
    if values.dtype == object:
        s = values[~values.map(_is_null).astype(bool)]
        if pd.api.types.infer_dtype(s, skipna=True) in ("bytes", "mixed", "mixed-integer"):  # bytes: their text b'..'
            s = s.map(lambda v: str(v) if isinstance(v, bytes) else v)
        blank = s.map(lambda v: isinstance(v, str) and not v.strip())
        return s[~blank.astype(bool)]
    s = values[values.notna()]
    if pd.api.types.is_float_dtype(s.dtype):
        s = s[np.isfinite(s.to_numpy(dtype="float64"))]
    if pd.api.types.is_string_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
        s = s[s.str.strip() != ""]
    return s


def _is_null(v: Any) -> bool:
    if _is_listlike(v):
        return False
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def sample_values(s: pd.Series, n: int = SAMPLE_SIZE) -> pd.Series:
    return s if len(s) <= n else s.sample(n=n, random_state=SEED)


def _n_unique(s: pd.Series) -> int:
    try:
        return int(s.nunique(dropna=True))
    except TypeError:  # unhashable values (lists / arrays)
        return int(s.map(lambda v: repr(np.asarray(v).tolist()) if _is_listlike(v) else repr(v)).nunique())


def is_random_token(x: str) -> bool:
    """A random alphanumeric token: >= 16 chars of [A-Za-z0-9_-], mixing >= 2 of lower/upper/digit,
    with at least half its characters distinct (words and repeated codes fail this)."""
    if not TOKEN_RE.match(x):
        return False
    classes = sum((any(c.islower() for c in x), any(c.isupper() for c in x), any(c.isdigit() for c in x)))
    return classes >= 2 and len(set(x)) >= 0.5 * len(x)


def id_pattern(x: str) -> str | None:
    """Name of the structural ID pattern a string matches (spec §16), or None."""
    x = x.strip()
    if UUID_RE.match(x):
        return "UUID (8-4-4-4-12 hex)"
    if HEX_HASH_RE.match(x):
        return f"{len(x)}-hex-digit hash"
    if SNOWFLAKE_RE.match(x):
        return "19-digit snowflake"
    return None


def _is_domain(x: str) -> bool:
    m = DOMAIN_RE.match(x)
    return bool(m) and m.group(1).lower() not in _FILE_EXTS


def as_vector(v: Any) -> list[float] | None:
    """A list/array cell or a '[1.0, 2.0]' string → list of floats, else None."""
    if isinstance(v, str):
        t = v.strip()
        if not t.startswith("["):
            return None
        try:
            v = json.loads(t)
        except ValueError:
            return None
    if not _is_listlike(v):
        return None
    try:
        arr = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr.tolist() if arr.ndim == 1 else None


# ---------------------------------------------------------------- detection

def detect_type(values: pd.Series, name: str = "") -> tuple[SemanticType, str]:
    """Return (semantic type, plain-words reason) for one column, judged from its values."""
    return _detect(values, name, non_null(values))[:2]


def detect_with_facts(values: pd.Series, name: str = "") -> tuple[SemanticType, str, dict]:
    """``detect_type`` plus the facts found: ``numeric`` (finite numbers), ``unparseable``, ``n_infinite``."""
    return _detect(values, name, non_null(values))


def _detect(values: pd.Series, name: str, nn: pd.Series) -> tuple[SemanticType, str, dict]:
    """Detection plus the facts found on the way (``ctx``), reused by profile_column."""
    floats = pd.api.types.is_float_dtype(values.dtype)
    ctx: dict[str, Any] = {"n_infinite": int(np.isinf(values.to_numpy("float64", na_value=np.nan)).sum()) if floats else 0}
    if nn.empty:
        return SemanticType.EMPTY, "all values are null" + (" or ±inf" if ctx["n_infinite"] else ""), ctx
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return SemanticType.BOOLEAN, "boolean dtype", ctx
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return SemanticType.TIMESTAMP, "datetime dtype", ctx
    if isinstance(dtype, pd.CategoricalDtype):
        nn = nn.astype(object)
    elif pd.api.types.is_timedelta64_dtype(dtype):
        ctx["numeric"] = nn.dt.total_seconds()
        return SemanticType.SCALAR, "duration dtype (seconds)", ctx
    n_unique = _n_unique(nn)
    ctx["n_unique"] = n_unique
    if pd.api.types.is_numeric_dtype(dtype):
        num = nn.astype("float64")
        ctx["numeric"] = num
        return (*_numeric_type(num, n_unique, name, "numeric dtype" + _inf_note(ctx)), ctx)

    sample = sample_values(nn)
    if sample.map(_is_listlike).mean() >= 0.8:
        return (*_vector_or_json(sample, listlike=True), ctx)
    strs = [str(v).strip() for v in sample]
    distinct = sorted({v.strip().lower() for v in pd.unique(nn.map(str))}) if n_unique <= 6 else []  # lists too
    if n_unique <= 6 and len(distinct) == 2 and set(distinct) in _BOOL_PAIRS:
        return SemanticType.BOOLEAN, f"two values {distinct[0]!r}/{distinct[1]!r}", ctx
    if sum(1 for s in strs if s[:1] in "{[") >= 0.8 * len(strs):
        got = _vector_or_json(pd.Series(strs), listlike=False)
        if got is not None:
            return (*got, ctx)
    unique_ratio = n_unique / len(nn)
    if unique_ratio >= 0.95:
        kinds = [id_pattern(s) or ("random token" if is_random_token(s) else None) for s in strs]
        hits = [k for k in kinds if k]
        if len(hits) >= 0.8 * len(strs):
            top = max(set(hits), key=hits.count)
            return SemanticType.IDENTIFIER, f"{unique_ratio:.0%} distinct and values look like {top} IDs", ctx
    num_s = pd.to_numeric(pd.Series(strs, dtype=object), errors="coerce")
    parsed = num_s.notna()
    leading_zero = sum(1 for s, ok in zip(strs, parsed) if ok and _LEADING_ZERO_RE.match(s))
    if parsed.mean() > 0.5 and leading_zero < 0.05 * parsed.sum():  # zero-padded → codes (zip)
        num_full = pd.to_numeric(nn.astype(object), errors="coerce").astype("float64")
        bad, inf = nn[num_full.isna()], np.isinf(num_full.to_numpy())
        num = num_full[~inf].dropna()
        ctx.update(numeric=num, unparseable=bad, n_infinite=int(inf.sum()), inf_in_non_null=int(inf.sum()))
        why = f"{parsed.mean():.0%} of values parse as numbers"
        if len(bad):
            why += f" ({len(bad)} unparseable, e.g. {str(bad.iloc[0])!r})"
        return (*_numeric_type(num, _n_unique(num), name, why + _inf_note(ctx)), ctx)
    ts = _parse_dates(pd.Series(strs, dtype=object))
    if ts is not None and ts.notna().mean() >= 0.9:
        return SemanticType.TIMESTAMP, f"{ts.notna().mean():.0%} of sampled strings parse as dates", ctx
    for st, test, what in ((SemanticType.EMAIL, EMAIL_RE.match, "email addresses"),
                           (SemanticType.URL, URL_RE.match, "URLs"),
                           (SemanticType.DOMAIN, _is_domain, "domain names")):
        r = sum(1 for s in strs if test(s)) / len(strs)
        if r >= 0.8:
            return st, f"{r:.0%} of sampled values are {what}", ctx
    if n_unique <= SET_MAX_LEVELS:
        return SemanticType.SET, f"{n_unique} distinct value{'s' if n_unique > 1 else ''}", ctx
    if unique_ratio <= 0.05:
        return SemanticType.SET, f"{n_unique} distinct values, each repeated ~{1 / unique_ratio:.0f}x on average", ctx
    mean_len = float(np.mean([len(s) for s in strs]))
    if unique_ratio <= 0.5 and mean_len <= 12 and not any(" " in s for s in strs):
        return SemanticType.SET, f"repeated short codes ({n_unique} distinct, {unique_ratio:.0%} of values)", ctx
    return SemanticType.STRING, f"free text with {n_unique} distinct values ({unique_ratio:.0%} of values)", ctx


def _numeric_type(num: pd.Series, n_unique: int, name: str, why: str) -> tuple[SemanticType, str]:
    levels = set(num.unique().tolist()) if n_unique <= 2 else set()
    if n_unique == 2 and levels <= {0.0, 1.0}:
        return SemanticType.BOOLEAN, f"{why}; only values 0 and 1"
    integer = bool(len(num)) and bool(np.all(np.mod(num.to_numpy(), 1) == 0))
    if integer and n_unique >= 0.95 * len(num) and ((num.abs() >= 1e18) & (num.abs() < 1e19)).mean() >= 0.8:
        return SemanticType.IDENTIFIER, f"{why}; 19-digit integers, {n_unique / len(num):.0%} distinct (snowflake IDs)"
    repeats = n_unique <= len(num) / 2  # levels of a category recur; 25 and 999 once each do not
    if integer and repeats and 2 <= n_unique <= SMALL_INT_LEVELS:
        return SemanticType.SET, f"{why}; only {n_unique} integer levels"
    if integer and repeats and n_unique <= SET_MAX_LEVELS and name and _CATEGORICAL_NAME.search(name):
        return SemanticType.SET, f"{why}; {n_unique} integer levels and the name suggests codes"
    return SemanticType.SCALAR, why


def _inf_note(ctx: dict) -> str:
    return f"; {ctx['n_infinite']} ±inf value(s) counted as missing" if ctx.get("n_infinite") else ""


def _vector_or_json(sample: pd.Series, listlike: bool) -> tuple[SemanticType, str] | None:
    vecs = [as_vector(v) for v in sample]
    lens = {len(v) for v in vecs if v is not None}
    if sum(v is not None for v in vecs) >= 0.8 * len(vecs) and len(lens) == 1 and min(lens) >= 2:
        return SemanticType.VECTOR, f"numeric vectors of length {lens.pop()}"
    if listlike:
        return SemanticType.JSON, "nested list values"
    ok = 0
    for s in sample:
        try:
            ok += isinstance(json.loads(s), (dict, list))
        except ValueError:
            pass
    if ok >= 0.8 * len(sample):
        return SemanticType.JSON, f"{ok / len(sample):.0%} of sampled values are JSON objects/arrays"
    return None


def _parse_dates(s: pd.Series) -> pd.Series | None:
    """Parse strings as dates (UTC); None when they do not look like dates at all."""
    looks = s.map(lambda x: bool(_DATEISH_RE.search(x)) and pd.isna(pd.to_numeric(x, errors="coerce")))
    if looks.mean() < 0.9:
        return None
    out = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=True)
    if out.notna().mean() < 0.9:
        try:
            out = pd.to_datetime(s, format="mixed", errors="coerce", utc=True)
        except (ValueError, TypeError, OverflowError):
            return None
    return out.where(looks)


# ---------------------------------------------------------------- profiles

def profile_column(values: pd.Series, name: str) -> ColumnProfile:
    """Type, null/unique ratios (whole column), up to 5 examples and type-specific stats."""
    n_rows = int(len(values))
    nn = non_null(values)
    st, reason, ctx = _detect(values, name, nn)
    n_unique = ctx.get("n_unique", _n_unique(nn) if len(nn) else 0)
    examples: list[str] = []
    for v in nn.iloc[:200]:
        s = repr(np.asarray(v).tolist()) if _is_listlike(v) else str(v)
        if s not in examples:
            examples.append(s[:200])
        if len(examples) == 5:
            break
    stats = {**_stats(st, nn, ctx), **({"n_infinite": ctx["n_infinite"]} if ctx.get("n_infinite") else {})}
    present = len(nn) - ctx.get("inf_in_non_null", 0)  # ±inf counts as missing in the null ratio
    return ColumnProfile(
        name=name, semantic_type=st, dtype=str(values.dtype), n_rows=n_rows,
        null_ratio=round(1 - present / n_rows, 6) if n_rows else 0.0, n_unique=n_unique,
        unique_ratio=round(n_unique / len(nn), 6) if len(nn) else 0.0, examples=examples,
        type_reason=reason, stats=to_jsonable(stats))


def profile_frame(df: pd.DataFrame) -> dict[str, ColumnProfile]:
    return {str(c): profile_column(df[c], str(c)) for c in df.columns}


def _stats(st: SemanticType, nn: pd.Series, ctx: dict) -> dict:
    if "numeric" in ctx and st in (SemanticType.SCALAR, SemanticType.IDENTIFIER, SemanticType.SET):
        out = _scalar_stats(ctx["numeric"])
        if st == SemanticType.SET:
            out["top_values"] = _top(ctx["numeric"])
        bad = ctx.get("unparseable")
        if bad is not None:
            out["n_unparseable"] = int(len(bad))
            out["unparseable_examples"] = [str(v) for v in pd.unique(bad.astype(str))[:5]]
        return out
    if st == SemanticType.BOOLEAN:
        low = nn.astype(str).str.strip().str.lower()
        return {"true_ratio": float(low.isin(["true", "yes", "1", "1.0", "t", "y"]).mean()), "top_values": _top(nn)}
    if st == SemanticType.SET:
        return {"n_categories": int(ctx.get("n_unique", 0)), "top_values": _top(nn)}
    if st == SemanticType.TIMESTAMP:
        return _timestamp_stats(nn)
    if st in (SemanticType.STRING, SemanticType.IDENTIFIER, SemanticType.EMAIL, SemanticType.URL,
              SemanticType.DOMAIN, SemanticType.JSON):
        return _string_stats(sample_values(nn).astype(str))
    if st == SemanticType.VECTOR:
        v = next((as_vector(x) for x in sample_values(nn, 50) if as_vector(x) is not None), None)
        return {"dim": len(v) if v else 0}
    return {}


def _top(s: pd.Series, k: int = 10) -> list[dict]:
    vc = s.astype(str).value_counts().head(k)
    return [{"value": str(v), "count": int(c)} for v, c in vc.items()]


@np.errstate(all="ignore")  # values near ±1e308 overflow the sums: such stats are None in the JSON
def _scalar_stats(num: pd.Series) -> dict:
    x = num.to_numpy(dtype="float64")
    if not len(x):
        return {}
    q1, q3 = np.percentile(x, [25, 75])
    iqr = q3 - q1
    out = ((x < q1 - 1.5 * iqr) | (x > q3 + 1.5 * iqr)).mean() if iqr > 0 else 0.0
    std = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    skew = float(pd.Series(x).skew()) if len(x) > 2 else 0.0
    seq = bool(np.all(np.mod(x, 1) == 0) and len(np.unique(x)) == len(x) and x.max() - x.min() + 1 <= 1.05 * len(x))
    return {"min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()), "std": std,
            "skew": 0.0 if math.isnan(skew) else skew, "zero_ratio": float((x == 0).mean()),
            "outlier_ratio": float(out), "is_integer": bool(np.all(np.mod(x, 1) == 0)),
            "is_sequential": seq}


def _timestamp_stats(nn: pd.Series) -> dict:
    if pd.api.types.is_datetime64_any_dtype(nn.dtype):
        ts, ratio = nn, 1.0
    else:
        uniq = pd.Series(pd.unique(nn.astype(str).str.strip()), dtype=object)
        parsed = _parse_dates(sample_values(uniq, 20000))
        if parsed is None or parsed.notna().sum() == 0:
            return {}
        ts, ratio = parsed.dropna(), float(parsed.notna().mean())
    return {"min": ts.min().isoformat(), "max": ts.max().isoformat(), "parse_ratio": ratio}


def _string_stats(s: pd.Series) -> dict:
    lens = s.str.len()
    out: dict[str, Any] = {"mean_length": float(lens.mean()), "min_length": int(lens.min()),
                           "max_length": int(lens.max()), "mean_words": float(s.str.split().str.len().mean()),
                           "fixed_width": bool(lens.min() == lens.max())}
    # spec §5.2: "consistent delimiters in >30% of values suggests DELIM_ATTN"
    ratios = {d: float(s.str.contains(d, regex=False).mean()) for d in (",", ";", "|", "/", "\t")}
    best = max(ratios, key=ratios.get)
    out["delimiter_ratios"] = ratios
    out["delimiter"] = best if ratios[best] > 0.3 else None
    return out


__all__ = ["INTERNAL_PREFIX", "SemanticType", "ColumnProfile", "detect_type", "profile_column", "profile_frame",
           "id_pattern", "is_random_token"]
