"""Free-text columns (spec §5.2 "String Encoding") and the distinct-value helpers every text codec uses.

Spec §5.2: "Free-form text passes through a centralized String Embedding Server that hosts a
pre-trained sentence transformer (all-MiniLM-L6-v2, 384-dim) ... an LRU cache of 131,072 entries
minimizes redundant calls." Here that server is :mod:`featrix_model.sentence`; every codec sends it
only the DISTINCT strings of a column (``column_texts`` factorises, ``per_distinct`` keeps them with
the inverse index), so each distinct string is embedded once per fit/transform, never per row and
never per epoch (transform runs once per column; encoders only index its tensors).

Strategy recommendation, spec §5.2: "Detection during string analysis determines which strategy to
recommend: high unique ratio plus low semantic similarity plus ID patterns suggests ZERO; fixed
width plus low entropy at separator positions suggests RADIX; consistent delimiters in >30% of
values suggests DELIM_ATTN." Concretely:

* ZERO - >= 95% of values distinct, >= 80% of sampled values match an ID pattern (UUID, hex hash,
  snowflake, random token; :func:`featrix_model.types.id_pattern`) and the shape-adjusted semantic
  similarity of spec §16 (:func:`featrix_model.usefulness.semantic_similarity`) is below 0.07.
  ZERO is then the only structural recommendation (an ID has no structure worth attending to).
* RADIX - >= 95% of values have one width W (2..64 characters) and at least one position holds the
  same non-alphanumeric separator in >= 95% of them (entropy <= 0.3 bits there), e.g. "ABC-12345".
* DELIM_ATTN - one of ``, ; | /`` occurs in > 30% of values and is "consistent": the items it
  splits off are short (<= 4 words on average), so commas inside prose do not count.
* One MLP level, from the share of distinct values: < 10% → AGGRESSIVE (low-entropy text),
  < 50% → MODERATE, else STANDARD.

Transform keys, per row after ``codecs.base.take_rows`` (kept once per distinct value, each with a
``.rows`` index, by ``per_distinct``): ``embedding`` float32 (n, 384); for DELIM_ATTN also ``parts``
float32 (n, 8, 384) (up to 8 stripped, non-empty items per value, each embedded once per distinct
item) and ``parts_mask`` bool (n, 8); for RADIX ``chars`` int64 (n, W) (ids of the characters seen
at fit, 0 = pad/unknown); always ``missing`` bool (n,), row-aligned.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from featrix_model import sentence
from featrix_model.codecs.base import ROWS, Codec, per_distinct
from featrix_model.types import id_pattern, is_random_token

DIM = 384
DELIMITERS = (",", ";", "|", "/")
MAX_PARTS = 8
MAX_RADIX_WIDTH = 64
MAX_CHARS = 255
SAMPLE = 2000
SEED = 0


# ---------------------------------------------------------------- distinct-value helpers

def to_text(v: object) -> str | None:
    """One cell as stripped text; None for NULL/NaN/blank (spec §1.4). 3.0 → "3", True → "true"."""
    if v is None:
        return None
    if isinstance(v, str):
        return v.strip() or None
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if not math.isfinite(x):
            return None
        return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (list, tuple, np.ndarray)):
        return repr(np.asarray(v).tolist())
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v).strip() or None


def column_texts(values: pd.Series, normalise: Callable[[str], str | None] | None = None
                 ) -> tuple[np.ndarray, list[str]]:
    """Distinct texts of a column and each row's index into them (int64, -1 = missing).

    Python-level work is per distinct value only: ``pd.factorize`` on the raw values, ``to_text``
    (+ ``normalise``) on the uniques, then a second factorise so 1, 1.0 and "1" share one text."""
    if len(values) <= SMALL:  # a few rows (single-row predictions): the same result without pandas' overhead
        return _small_column_texts(values, normalise)
    s = pd.Series(values).reset_index(drop=True)
    try:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists)
        codes, uniques = pd.factorize(s.map(to_text), use_na_sentinel=True)
    if len(uniques) == 0:
        return np.full(len(s), -1, dtype=np.int64), []
    texts = [to_text(u) for u in uniques]
    if normalise is not None:
        texts = [None if t is None else normalise(t) for t in texts]
    codes2, uniq2 = pd.factorize(pd.Series(texts, dtype=object), use_na_sentinel=True)
    inv = np.append(codes2, -1).astype(np.int64)[codes]
    return inv, [str(t) for t in uniq2]


def _text(v, normalise) -> str | None:
    t = to_text(v)
    return normalise(t) if t is not None and normalise is not None else t


SMALL = 64  # rows up to which column_texts factorises in plain Python


def _small_column_texts(values, normalise) -> tuple[np.ndarray, list[str]]:
    """``column_texts`` row by row, with the same result: texts in first-appearance order, and equal
    raw values sharing the first one's text as ``pd.factorize`` has them (it counts True, 1 and 1.0
    as one value, and so does a dict)."""
    where: dict[str, int] = {}
    first: dict = {}
    inv = np.full(len(values), -1, dtype=np.int64)
    for i, v in enumerate(values.tolist() if hasattr(values, "tolist") else list(values)):
        try:
            t = first[v] if v in first else first.setdefault(v, _text(v, normalise))
        except TypeError:  # unhashable cells (lists)
            t = _text(v, normalise)
        if t is not None:
            inv[i] = where.setdefault(str(t), len(where))
    return inv, list(where)


def gather(per_distinct: np.ndarray, inv: np.ndarray, fill: float | int = 0) -> np.ndarray:
    """Rows of a per-distinct array by inverse index; rows with inv == -1 get ``fill``."""
    pad = np.full((1, *per_distinct.shape[1:]), fill, dtype=per_distinct.dtype)
    return np.concatenate([per_distinct, pad])[np.where(inv < 0, len(per_distinct), inv)]


def embed_distinct(texts: list[str]) -> np.ndarray:
    """Sentence embeddings (len, 384) of distinct texts; one model call for the list."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    return sentence.embed(list(texts))


def embed_optional(items: list[str | None]) -> np.ndarray:
    """(len, 384) embeddings of per-distinct items where None/"" gives a zero vector; each distinct
    non-empty item is embedded once."""
    codes, uniq = pd.factorize(pd.Series([i or None for i in items], dtype=object), use_na_sentinel=True)
    return gather(embed_distinct([str(u) for u in uniq]), codes.astype(np.int64), 0.0)


# ---------------------------------------------------------------- the codec

class StringCodec(Codec):
    """Sentence embeddings of free text plus the §5.2 strategy recommendation (module docstring)."""

    semantic_type = "string"

    def fit(self, values: pd.Series) -> "StringCodec":
        inv, texts = column_texts(values)
        counts = np.bincount(inv[inv >= 0], minlength=len(texts))
        n = int(counts.sum())
        rng = np.random.default_rng(SEED)
        rows = inv[inv >= 0]
        sample = [texts[i] for i in (rows if len(rows) <= SAMPLE else rng.choice(rows, SAMPLE, replace=False))]
        self.n_rows_, self.n_missing_ = int(len(inv)), int(len(inv) - n)
        self.unique_ratio_ = len(texts) / n if n else 0.0
        self.recommended_, self.reasons_ = [], {}
        self.delimiter_, self.width_, self.chars_ = None, 0, []
        if sample:
            self._detect(texts, counts, sample)
        else:
            self._recommend("STANDARD", "no non-null values to analyse → STANDARD")
        self._build()
        return self

    def _detect(self, texts: list[str], counts: np.ndarray, sample: list[str]) -> None:
        ur = self.unique_ratio_
        kinds = [id_pattern(s) or ("random token" if is_random_token(s) else None) for s in sample]
        hits = [k for k in kinds if k]
        if ur >= 0.95 and len(hits) >= 0.8 * len(sample):
            from featrix_model.usefulness import LOW_SIMILARITY, semantic_similarity

            sim = semantic_similarity(pd.Series(texts))
            if sim is not None and sim["semantic_similarity"] < LOW_SIMILARITY:
                top = max(set(hits), key=hits.count)
                self._recommend("ZERO", f"{ur:.0%} of values are distinct, {len(hits) / len(sample):.0%} look like "
                                f"{top} IDs and their semantic similarity is low ({sim['semantic_similarity']:.2f} "
                                f"< {LOW_SIMILARITY}) → ZERO")
                return
        lens = np.array([len(t) for t in texts])
        share = {d: float(counts[[d in t for t in texts]].sum() / counts.sum()) for d in DELIMITERS}
        best = max(DELIMITERS, key=lambda d: share[d])
        if share[best] > 0.3:
            words = [len(p.split()) for t in sample if best in t for p in t.split(best) if p.strip()]
            if words and float(np.mean(words)) <= 4:
                self.delimiter_ = best
                self._recommend("DELIM_ATTN", f"values are {_NAMES[best]}-delimited in {share[best]:.0%} of rows, "
                                f"in short items ({np.mean(words):.1f} words each) → DELIM_ATTN")
        width = int(np.bincount(lens, weights=counts).argmax())
        fixed = float(counts[lens == width].sum() / counts.sum())
        if fixed >= 0.95 and 2 <= width <= MAX_RADIX_WIDTH:
            same = [s for s in sample if len(s) == width]
            seps = []
            for pos in range(width if same else 0):
                col = Counter(s[pos] for s in same)
                ch, c = col.most_common(1)[0]
                ent = -sum(k / len(same) * math.log2(k / len(same)) for k in col.values())
                if not ch.isalnum() and c >= 0.95 * len(same) and ent <= 0.3:
                    seps.append(f"{pos}:{ch!r}")
            if seps:
                self.width_ = width
                chars = Counter(ch for s in sample for ch in s)
                self.chars_ = [ch for ch, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CHARS]]
                self._recommend("RADIX", f"{fixed:.0%} of values are {width} characters wide with a fixed separator at "
                                f"position {', '.join(seps[:4])} → RADIX")
        if ur < 0.1:
            self._recommend("AGGRESSIVE", f"only {ur:.0%} of values are distinct (low-entropy text) → AGGRESSIVE")
        elif ur < 0.5:
            self._recommend("MODERATE", f"{ur:.0%} of values are distinct → MODERATE")
        else:
            self._recommend("STANDARD", f"{ur:.0%} of values are distinct (rich text) → STANDARD")

    def _recommend(self, strategy: str, reason: str) -> None:
        self.recommended_.append(strategy)
        self.reasons_[strategy] = reason

    def _build(self) -> None:
        self.char_index_ = {ch: i + 1 for i, ch in enumerate(self.chars_)}

    def transform(self, values: pd.Series) -> dict[str, torch.Tensor]:
        inv, texts = column_texts(values)
        out = {"missing": torch.from_numpy(inv < 0)}
        out["embedding"], out["embedding" + ROWS] = per_distinct(embed_distinct(texts), inv, 0.0)
        if self.delimiter_ is not None:
            parts, mask = self._parts(texts)
            out["parts"], out["parts" + ROWS] = per_distinct(parts, inv, 0.0)
            out["parts_mask"], out["parts_mask" + ROWS] = per_distinct(mask, inv, False)
        if self.width_:
            ids = np.zeros((len(texts), self.width_), dtype=np.int64)
            for i, t in enumerate(texts):
                row = [self.char_index_.get(ch, 0) for ch in t[:self.width_]]
                ids[i, :len(row)] = row
            out["chars"], out["chars" + ROWS] = per_distinct(ids, inv, 0)
        return out

    def _parts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(distinct, 8, 384) item embeddings and (distinct, 8) mask; each distinct item embedded once."""
        split = [[p.strip() for p in t.split(self.delimiter_) if p.strip()][:MAX_PARTS] or [t] for t in texts]
        items = list(dict.fromkeys(p for ps in split for p in ps))
        where = {p: i for i, p in enumerate(items)}
        vecs = embed_distinct(items)
        parts = np.zeros((len(texts), MAX_PARTS, DIM), dtype=np.float32)
        mask = np.zeros((len(texts), MAX_PARTS), dtype=bool)
        for i, ps in enumerate(split):
            parts[i, :len(ps)] = vecs[[where[p] for p in ps]]
            mask[i, :len(ps)] = True
        return parts, mask

    def get_state(self) -> dict:
        return {"recommended": list(self.recommended_), "reasons": dict(self.reasons_),
                "delimiter": self.delimiter_, "width": self.width_, "chars": list(self.chars_),
                "n_rows": self.n_rows_, "n_missing": self.n_missing_, "unique_ratio": self.unique_ratio_}

    def set_state(self, state: dict) -> "StringCodec":
        self.recommended_, self.reasons_ = list(state["recommended"]), dict(state["reasons"])
        self.delimiter_, self.width_, self.chars_ = state["delimiter"], int(state["width"]), list(state["chars"])
        self.n_rows_, self.n_missing_ = int(state["n_rows"]), int(state["n_missing"])
        self.unique_ratio_ = float(state["unique_ratio"])
        self._build()
        return self

    def encoder_kwargs(self) -> dict:
        return {"recommended": list(self.recommended_), "delimiter": self.delimiter_,
                "width": self.width_, "n_chars": len(self.chars_)}

    def report(self) -> dict:
        return {"recommended": list(self.recommended_), "reasons": [self.reasons_[s] for s in self.recommended_],
                "unique_ratio": round(self.unique_ratio_, 4),
                "missing_share": round(self.n_missing_ / self.n_rows_, 4) if self.n_rows_ else 0.0}


_NAMES = {",": "comma", ";": "semicolon", "|": "pipe", "/": "slash"}
__all__ = ["StringCodec", "column_texts", "embed_distinct", "embed_optional", "gather", "to_text"]
