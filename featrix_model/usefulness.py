"""Useless-column scorer: spec §16 "Intelligent Column Filtering: Excluding Zero-Information Data".

Rules, straight from the spec:

* "Start with the obvious cases: columns that are entirely null, or entirely the same value ...
  If the answers are 'no' or 'one', the column is gone." → kinds ``all_null`` and ``constant``.
* "Any column starting with __featrix is metadata ... should never be included in the embedding
  space." → kind ``internal``.
* "The system uses weighted scoring. High uniqueness contributes 0.3, low semantic similarity
  contributes 0.4, structural pattern match contributes 0.5, name hints contribute 0.1. Add them
  up. If the total score exceeds 0.7, the column gets excluded." → kind ``random_identifier``.
  High uniqueness: "95% or more of values are distinct" (among non-null values). Structural
  pattern: "UUID format (8-4-4-4-12 hex digits)? Hash format (32 or 64 hex digits)? Snowflake IDs
  (19-digit integers)?" - 40-hex SHA-1 digests count too; >= 80% of sampled values must match.
  Name hint: "id", "uuid", "hash", "key", "token" (also guid and plurals) as a word part of the
  name (snake_case / camelCase split), so ``paid`` or ``valid`` do not count.
* "customer_id with values 1, 2, 3, ... kept": semantic similarity is only measured for string
  columns with >= 95% distinct values, so a random numeric id scores at most 0.3 + 0.1 (but see
  sequential integers below: a counter of 50 or more values is an identifier).

Semantic similarity. The spec says to "grab BERT embeddings for a sample of values and measure how
correlated they are". The plain mean pairwise cosine (diagonal excluded) does not separate random
IDs from meaningful text with all-MiniLM-L6-v2: strings of one surface shape (all hex, all digits)
land in one region of the space, so UUIDs look *more* alike than airport names. Measured with 64
seeded distinct values (mean pairwise cosine):

    uuid4 0.70   md5 0.71   sha256 0.80   snowflake strings 0.75   random 16-char tokens 0.45
    airport names 0.24   airline names 0.59   emails 0.63   URLs 0.50   user agents 0.94
    product names ("Acme Trail L red") 0.43

So the score uses the mean pairwise cosine *above a same-shape baseline*: each sampled value is
also "scrambled" (every digit replaced by a random digit, every letter by a random letter of the
same case - hex letters by hex letters when the value is hex-like - punctuation and spaces kept)
and the baseline is the mean cosine between a value and its scramble. A prefix/suffix shared by
every sampled value (``sess_``, ``https://www.``) is stripped first: it carries no information.

    semantic_similarity = mean pairwise cosine(values) - mean cosine(value, scrambled value)

Calibration (mean over 5 seeds, 64 values each; [min, max] over seeds):

    random - must be low:  uuid4 0.027 [0.020, 0.042]   md5 0.009   sha1 0.011   sha256 0.029
        snowflake strings -0.003   random 16/32-char tokens -0.021 / -0.013   base64 -0.039
        ULIDs -0.008   "sess_"+24 random chars -0.011   random 6-char codes -0.045
    meaningful - must be high:  domains 0.110 [0.094, 0.127]   airport names 0.131 [0.105, 0.162]
        person names 0.169   emails 0.218   URLs 0.252   product names 0.261   addresses 0.271
        "iPhone 13 Pro"-style names 0.310   sentences 0.329   airline names 0.467
        user agents 0.635

``LOW_SIMILARITY = 0.07`` sits between the highest random value seen (0.042) and the lowest
meaningful one (0.094).

Identifiers that are not random (a surrogate key, customer codes: a warehouse probe found them kept).
Two more structural patterns count for the 0.5 pattern weight, both judged from the values:

* sequential integers — at least ``MIN_SEQUENCE_VALUES`` whole numbers, nearly all distinct, whose
  sorted steps are one constant step (at most ``MAX_SEQUENCE_STEP``) for >= ``SEQUENCE_STEP_SHARE``
  of them (a surrogate key 1, 2, 3, ... with a few gaps). Unique *floats* (a measurement) never
  match, nor does a column whose name says it is a time (``year``, ``epoch_s``...): counting hours
  or years is a scale, not an id.
* code-like strings — ``ACME-00123``, ``cust_000451``: one shape (letters and punctuation fixed,
  each run of digits free) shared by >= 80% of the sample, with letters in it and 1-3 digit runs.

With the 0.3 of high uniqueness either gives 0.8 > 0.7: excluded as kind ``identifier``. The spec's
"customer_id with values 1, 2, 3, ... kept" (tenure) is overridden here: a sequential id whose order
means something is kept by naming it (``keep=`` / the dataset spec's ``keep_columns``).

Near-empty columns: a column whose NULL (or blank) share is >= ``NEAR_EMPTY_NULL_SHARE`` is excluded
as kind ``mostly_null``, with the measured share and the threshold in the reason.
"""

from __future__ import annotations

import os
import random
import re
import string
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from featrix_model.jsonable import to_jsonable
from featrix_model.types import (
    INTERNAL_PREFIX,
    SEED,
    SNOWFLAKE_RE,
    ColumnProfile,
    SemanticType,
    non_null,
    sample_values,
    id_pattern,
    profile_column,
)

W_UNIQUENESS, W_LOW_SIMILARITY, W_PATTERN, W_NAME = 0.3, 0.4, 0.5, 0.1
EXCLUDE_ABOVE = 0.7
HIGH_UNIQUENESS = 0.95
LOW_SIMILARITY = 0.07
SIM_SAMPLE = 64
PATTERN_MIN_RATIO = 0.8
NEAR_EMPTY_NULL_SHARE = 0.95  # a column with at least this share of NULL/blank values is too sparse to learn from
MIN_SEQUENCE_VALUES = 50  # fewer distinct integers than this are too few to call a sequence (a 30-row year table)
SEQUENCE_STEP_SHARE = 0.9  # share of sorted steps equal to the most common step
SEQUENCE_UNIQUE = 0.99  # distinct share of a sequential key's values
MAX_SEQUENCE_STEP = 10  # a counter steps by 1 (or a few); steps of 60, 3600, 86400 are clocks, not keys
SEQUENCE_SPAN = 2.0  # a counter with holes: its span is at most this many times the steps its values fill
SEQUENTIAL, CODE_LIKE = "sequential integers", "code-like identifiers"
_NAME_HINTS = {"id", "ids", "uuid", "uuids", "guid", "guids", "hash", "hashes", "key", "keys", "token", "tokens"}
_TIME_HINTS = {"year", "years", "yr", "date", "dates", "time", "times", "ts", "timestamp", "epoch", "hour", "hours",
               "day", "days", "month", "months", "week", "weeks", "minute", "minutes", "second", "seconds", "sec",
               "secs", "ms", "quarter", "period", "dt", "at"}
_STRINGLIKE = {SemanticType.STRING, SemanticType.IDENTIFIER, SemanticType.EMAIL, SemanticType.URL,
               SemanticType.DOMAIN, SemanticType.JSON, SemanticType.SET}


@dataclass
class UselessVerdict:
    """Whether a column is excluded. ``signals`` holds each §16 weight that fired (0 when not);
    ``metrics`` the measured values behind them (unique ratio, semantic similarity, ...)."""

    column: str
    exclude: bool
    score: float
    signals: dict[str, float]
    reason: str
    kind: str  # "all_null" | "mostly_null" | "constant" | "random_identifier" | "identifier" | "internal" | "kept"
    metrics: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return to_jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "UselessVerdict":
        return cls(d["column"], d["exclude"], d["score"], d["signals"], d["reason"], d["kind"], d.get("metrics", {}))


def _name_parts(name: str) -> list[str]:
    """Word parts of a name, snake_case and camelCase split: ``sessionToken`` → [session, token]."""
    return re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())


def name_hint(name: str) -> bool:
    """True when a word part of the name is id/uuid/guid/hash/key/token (e.g. user_id, sessionToken)."""
    return any(p in _NAME_HINTS for p in _name_parts(name))


def sequence_step(values: pd.Series, name: str = "") -> tuple[float, float] | None:
    """(step, share of sorted steps equal to it) when the column's values are sequential integers —
    at least ``MIN_SEQUENCE_VALUES``, ``SEQUENCE_UNIQUE`` distinct, ``SEQUENCE_STEP_SHARE`` of the
    sorted steps one constant step — else None. Time-named columns never count (see module doc)."""
    if any(p in _TIME_HINTS for p in _name_parts(name)):
        return None
    nn = non_null(values)
    if pd.api.types.is_bool_dtype(nn.dtype) or isinstance(nn.dtype, pd.CategoricalDtype):
        return None
    if not pd.api.types.is_numeric_dtype(nn.dtype):  # integers stored as text
        if not (nn.dtype == object or pd.api.types.is_string_dtype(nn.dtype)):
            return None
        nn = pd.to_numeric(nn.astype(object), errors="coerce")
        if nn.isna().any():
            return None
    x = nn.to_numpy(dtype="float64")
    if len(x) < MIN_SEQUENCE_VALUES or not np.all(np.isfinite(x)) or not np.all(np.mod(x, 1) == 0):
        return None
    u = np.unique(x)
    if len(u) < max(MIN_SEQUENCE_VALUES, SEQUENCE_UNIQUE * len(x)):
        return None
    steps = np.diff(u)
    vals, counts = np.unique(steps, return_counts=True)
    share = float(counts.max() / len(steps))
    step = float(vals[counts.argmax()])
    if share >= SEQUENCE_STEP_SHARE and step <= MAX_SEQUENCE_STEP:
        return step, share
    # a counter with holes (deleted or sampled rows): still dense — its values fill most of their span
    dense = (u[-1] - u[0] + step) / (step * len(u)) <= SEQUENCE_SPAN and float(np.median(steps)) == step
    return (step, share) if dense and step <= MAX_SEQUENCE_STEP else None


def code_shape(values: pd.Series) -> tuple[str, float] | None:
    """(shape, share of sampled values with it) when the values are code-like identifiers: one shape
    (``acme-#``: letters and punctuation fixed, lower-cased; each run of digits ``#``) held by
    >= ``PATTERN_MIN_RATIO`` of a sample, with letters in it and one to three digit runs; else None."""
    nn = sample_values(non_null(values))
    if nn.empty or pd.api.types.is_numeric_dtype(nn.dtype) or pd.api.types.is_bool_dtype(nn.dtype):
        return None
    strs = nn.map(lambda v: v.strip() if isinstance(v, str) else None).dropna()
    if len(strs) < 2:
        return None
    shapes = strs.str.lower().str.replace(r"\d+", "#", regex=True)
    top = shapes.value_counts()
    shape, share = str(top.index[0]), float(top.iloc[0] / len(strs))
    fixed = shape.replace("#", "")
    if share < PATTERN_MIN_RATIO or not 1 <= shape.count("#") <= 3 or not re.search(r"[a-z]", fixed) or len(fixed) > 24:
        return None
    return shape, share


def _scramble(x: str, rng: random.Random) -> str:
    hexlike = all(c in string.hexdigits or c == "-" for c in x)
    out = []
    for c in x:
        if c.isdigit():
            out.append(rng.choice(string.digits))
        elif c.isalpha() and c.isascii():
            pool = ("0123456789abcdef" if c.islower() else "0123456789ABCDEF") if hexlike else (
                string.ascii_lowercase if c.islower() else string.ascii_uppercase)
            out.append(rng.choice(pool))
        else:
            out.append(c)
    return "".join(out)


def _strip_common(vals: list[str]) -> list[str]:
    pre = os.path.commonprefix(vals)
    suf = os.path.commonprefix([v[::-1] for v in vals])[::-1]
    out = [v[len(pre):len(v) - len(suf)] for v in vals]
    return vals if min(len(v) for v in out) == 0 else out


def semantic_similarity(values: pd.Series, n: int = SIM_SAMPLE) -> dict[str, float] | None:
    """Shape-adjusted semantic similarity of a seeded sample of ``n`` distinct values (see module
    docstring). Returns {"semantic_similarity", "mean_cosine", "shape_baseline", "n_sampled"}."""
    from featrix_model.sentence import embed

    distinct = sorted({str(v).strip() for v in non_null(values)})
    if len(distinct) < 2:
        return None
    rng = random.Random(SEED)
    vals = rng.sample(distinct, n) if len(distinct) > n else distinct
    vals = [v[:256] for v in _strip_common(vals)]
    e = embed(vals)
    k = len(vals)
    mean_cos = float(((e @ e.T).sum() - k) / (k * (k - 1)))
    f = embed([_scramble(v, rng) for v in vals])
    baseline = float((e * f).sum(axis=1).mean())
    return {"semantic_similarity": round(mean_cos - baseline, 4), "mean_cosine": round(mean_cos, 4),
            "shape_baseline": round(baseline, 4), "n_sampled": k}


def _pattern(values: pd.Series, name: str = "", unique: bool = True) -> tuple[str | None, float]:
    """The structural ID pattern matched by >= 80% of a sample (or the whole column's sequence), and its
    match ratio: UUID / hash / snowflake, then (for ``unique`` columns only) sequential integers and
    code-like strings."""
    seq = sequence_step(values, name) if unique else None
    if seq is not None:
        x = pd.to_numeric(non_null(values).astype(object), errors="coerce")
        return f"{SEQUENTIAL} ({int(x.min())}..{int(x.max())}, step {seq[0]:g})", seq[1]
    found, ratio = _random_pattern(values)
    if found is None and unique and (code := code_shape(values)) is not None:
        return f"{CODE_LIKE} (shape '{code[0]}')", code[1]
    return found, ratio


def _random_pattern(values: pd.Series) -> tuple[str | None, float]:
    """UUID / hash / snowflake matched by >= 80% of a sample, and the match ratio."""
    nn = sample_values(non_null(values))
    if nn.empty:
        return None, 0.0
    if pd.api.types.is_numeric_dtype(nn.dtype) and not pd.api.types.is_bool_dtype(nn.dtype):
        x = nn.to_numpy()
        if not np.all(np.mod(x, 1) == 0):
            return None, 0.0
        strs = [str(int(v)) for v in x]
        ratio = sum(1 for s in strs if SNOWFLAKE_RE.match(s)) / len(strs)
        return ("19-digit snowflake" if ratio >= PATTERN_MIN_RATIO else None), ratio
    kinds = [id_pattern(str(v)) for v in nn]
    hits = [k for k in kinds if k]
    ratio = len(hits) / len(kinds)
    return (max(set(hits), key=hits.count) if ratio >= PATTERN_MIN_RATIO else None), ratio


def score_useless(values: pd.Series, name: str, profile: ColumnProfile | None = None) -> UselessVerdict:
    """Spec §16 verdict for one column (see module docstring for the rules and weights)."""
    zero = {"uniqueness": 0.0, "low_semantic_similarity": 0.0, "pattern": 0.0, "name_hint": 0.0}
    if name.startswith(INTERNAL_PREFIX):
        return UselessVerdict(name, True, 1.0, zero, f"Column '{name}' is internal Featrix metadata "
                              f"({INTERNAL_PREFIX} prefix). Excluding from training.", "internal")
    p = profile or profile_column(values, name)
    metrics: dict = {"unique_ratio": p.unique_ratio, "n_unique": p.n_unique, "null_ratio": p.null_ratio}
    if p.semantic_type == SemanticType.EMPTY or p.n_unique == 0:
        return UselessVerdict(name, True, 1.0, zero, f"Column '{name}' is entirely null ({p.n_rows:,} rows). "
                              "No data. Excluding from training.", "all_null", metrics)
    if p.null_ratio >= NEAR_EMPTY_NULL_SHARE:
        n_values = p.n_rows - round(p.null_ratio * p.n_rows)
        return UselessVerdict(name, True, 1.0, zero, (
            f"Column '{name}' is {p.null_ratio:.1%} NULL or blank ({n_values:,} of {p.n_rows:,} rows have a value): "
            f"at or above the {NEAR_EMPTY_NULL_SHARE:.0%} null-share threshold for near-empty columns. Too sparse to "
            "learn from. Excluding from training."), "mostly_null", {**metrics, "null_threshold": NEAR_EMPTY_NULL_SHARE})
    if p.n_unique == 1:
        value = str(non_null(values).iloc[0])
        return UselessVerdict(name, True, 1.0, zero, f"Column '{name}' has only 1 unique value ('{value}'). "
                              "Provides no discrimination. Excluding from training.", "constant", metrics)

    signals = dict(zero)
    unique = p.unique_ratio >= HIGH_UNIQUENESS
    signals["uniqueness"] = W_UNIQUENESS if unique else 0.0
    pattern, ratio = _pattern(values, name, unique)
    metrics["pattern_ratio"] = round(ratio, 4)
    signals["pattern"] = W_PATTERN if pattern else 0.0
    signals["name_hint"] = W_NAME if name_hint(name) else 0.0
    sim = None
    if unique and p.semantic_type in _STRINGLIKE and not pd.api.types.is_numeric_dtype(values.dtype):
        measured = semantic_similarity(values)
        if measured:
            metrics.update(measured)
            sim = measured["semantic_similarity"]
            signals["low_semantic_similarity"] = W_LOW_SIMILARITY if sim < LOW_SIMILARITY else 0.0
    score = round(sum(signals.values()), 6)
    exclude = score > EXCLUDE_ABOVE

    evidence = []
    if signals["low_semantic_similarity"]:
        evidence.append(f"low semantic similarity ({sim:.2f})")
    if pattern:
        evidence.append(f"values match the {pattern} pattern ({ratio:.0%})")
    if signals["name_hint"]:
        evidence.append("the name suggests an identifier")
    if exclude:
        reason = (f"Column '{name}' has {p.unique_ratio:.1%} unique values and " + ", ".join(evidence)
                  + f". Likely an identifier column. Excluding from training (score {score:.2f} > {EXCLUDE_ABOVE}).")
        if pattern and pattern.startswith(SEQUENTIAL):
            reason += " Keep it explicitly if the order of its numbers means something (e.g. sign-up order)."
        kind = "identifier" if pattern and pattern.startswith((SEQUENTIAL, CODE_LIKE)) else "random_identifier"
        return UselessVerdict(name, True, score, signals, reason, kind, metrics)
    tail = f"score {score:.2f} is not above {EXCLUDE_ABOVE}: kept"
    if unique and sim is not None and not signals["low_semantic_similarity"]:
        reason = (f"high uniqueness ({p.unique_ratio:.0%}) but values are semantically related "
                  f"(similarity {sim:.2f}): kept")
    elif unique and sim is None and p.stats.get("is_sequential"):
        reason = (f"high uniqueness ({p.unique_ratio:.0%}) but values are sequential integers "
                  f"({p.stats['min']:.0f}..{p.stats['max']:.0f}), like customer_id 1, 2, 3, ... which can "
                  f"track tenure; {tail}")
    elif unique and sim is None:
        reason = (f"high uniqueness ({p.unique_ratio:.0%}) but {p.semantic_type.value} values are not "
                  f"random strings (semantic similarity is only measured for text); {tail}")
    elif unique:
        reason = f"high uniqueness ({p.unique_ratio:.0%}) and " + ", ".join(evidence) + f", but {tail}"
    elif evidence:
        reason = f"{p.unique_ratio:.1%} unique values; " + ", ".join(evidence) + f"; {tail}"
    else:
        reason = f"{p.n_unique:,} distinct values ({p.unique_ratio:.1%} unique), no identifier signals: kept"
    return UselessVerdict(name, False, score, signals, reason, "kept", metrics)


def find_useless_columns(df: pd.DataFrame, profiles: dict[str, ColumnProfile] | None = None
                         ) -> dict[str, UselessVerdict]:
    """Verdict for every column of ``df`` (reusing ``profiles`` when given)."""
    profiles = profiles or {}
    return {str(c): score_useless(df[c], str(c), profiles.get(str(c))) for c in df.columns}
