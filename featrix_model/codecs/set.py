"""Categorical and boolean columns (spec §5.3 "Set/Categorical Encoding", §1.2 "Booleans").

Spec §5.3: "Categorical values use a hybrid learned + semantic architecture that enables
generalization to unseen categories." The codec gives the encoder both inputs per row:

* ``idx`` int64 (n,) - vocabulary index for the LEARNED path. Members are the distinct values
  sorted by frequency (ties by text), capped at ``max_members`` (2,048); index 0 is reserved for
  unknown / out-of-vocabulary values (rarer members beyond the cap, values unseen at fit) and for
  missing rows.
* ``semantic`` float32 (n, 384) per row (kept once per distinct value with a ``semantic.rows`` index,
  ``codecs.base.per_distinct``) - the sentence embedding of the value's text for the SEMANTIC path
  ("BERT("unemployed")"), for known and unseen values alike: "When an unseen category appears at
  inference, the semantic path is used exclusively". Underscores are read as spaces
  ("Senior_software_engineer" → "Senior software engineer"). Only the distinct values of the
  column are embedded (once each, via the cached sentence model).
* ``ordinal`` float32 (n,) - rank in [0, 1] when the members form an ordered scale, else -1
  (spec: "When ordinal values are detected (e.g., "low", "medium", "high"), ordinal embeddings ...
  preserve order information"). Known scales (``SCALES``): low/medium/high, sizes, quality,
  temperature, frequency, quantity, ordinals, Likert agreement/satisfaction/likelihood, skill
  levels; a member set is ordinal when it has >= 2 members that all belong to one scale (after
  lower-casing, "_"/"-" → space); the rank is the position on the full scale, so an unseen
  "very high" still ranks. Members that all parse as numbers (no zero-padded codes like "02134")
  are ordinal by value: rank by sorted position, interpolated for unseen numbers.
* ``missing`` bool (n,) - NULL/NaN/blank.

Booleans ("Booleans: is_active, has_subscription. Treated as binary categorical.") use this codec
with ``semantic_type="boolean"``: values are normalised first (True, "yes", "1", "t", "y", "on" →
"true"; False, "no", "0", "f", "n", "off" → "false"); booleans are never ordinal.

State holds only member strings and counts, no embedding vectors: the sentence model is
deterministic, so ``transform`` after ``set_state`` re-embeds the distinct values and gives
identical tensors.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch

from featrix_model.codecs.base import ROWS, Codec, per_distinct
from featrix_model.codecs.string import column_texts, embed_distinct, gather

MAX_MEMBERS = 2048
_TRUE = {"true", "yes", "1", "t", "y", "on"}
_FALSE = {"false", "no", "0", "f", "n", "off"}
_LEADING_ZERO = re.compile(r"^[+-]?0\d")

# Ordered scales: each step is a group of synonyms (rank = step / (steps - 1)).
SCALES: dict[str, list[tuple[str, ...]]] = {
    "level": [("very low",), ("low",), ("medium", "mid", "moderate", "normal"), ("high",), ("very high",)],
    "size": [("xxs",), ("xs", "extra small"), ("s", "small"), ("m", "medium"), ("l", "large"),
             ("xl", "extra large"), ("xxl",), ("xxxl",)],
    "quality": [("terrible", "awful", "very bad", "very poor"), ("bad", "poor"),
                ("ok", "okay", "fair", "average", "so so"), ("good",), ("very good", "great"), ("excellent",)],
    "temperature": [("freezing",), ("cold",), ("cool",), ("mild", "lukewarm"), ("warm",), ("hot",)],
    "frequency": [("never",), ("rarely", "seldom"), ("sometimes", "occasionally"),
                  ("often", "frequently", "usually"), ("always",)],
    "quantity": [("none",), ("few", "a few"), ("some", "several"), ("many", "lots"), ("most",), ("all",)],
    "order": [("first", "1st"), ("second", "2nd"), ("third", "3rd"), ("fourth", "4th"), ("fifth", "5th"),
              ("sixth", "6th"), ("seventh", "7th"), ("eighth", "8th"), ("ninth", "9th"), ("tenth", "10th")],
    "agreement": [("strongly disagree",), ("disagree", "somewhat disagree"),
                  ("neutral", "neither agree nor disagree", "undecided"), ("agree", "somewhat agree"),
                  ("strongly agree",)],
    "satisfaction": [("very dissatisfied",), ("dissatisfied",), ("neutral",), ("satisfied",),
                     ("very satisfied",)],
    "likelihood": [("very unlikely",), ("unlikely",), ("neutral", "maybe"), ("likely",), ("very likely",)],
    "skill": [("novice", "beginner"), ("intermediate",), ("advanced",), ("expert",)],
}


def _scale_key(text: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", text.lower()).replace(".", " ").split())


_SCALE_RANKS = {name: {w: i / (len(steps) - 1) for i, step in enumerate(steps) for w in step}
                for name, steps in SCALES.items()}


def normalise_boolean(text: str) -> str:
    """"True"/"yes"/"1"/"t"/"y"/"on" → "true", the opposites → "false", anything else unchanged."""
    low = text.strip().lower()
    return "true" if low in _TRUE else "false" if low in _FALSE else text


def _as_number(text: str) -> float | None:
    if _LEADING_ZERO.match(text):
        return None
    try:
        x = float(text)
    except ValueError:
        return None
    return x if np.isfinite(x) else None


class SetCodec(Codec):
    """Vocabulary + semantic text + ordinal rank of a categorical (or boolean) column.

    ``semantic_type`` is "set" by default and "boolean" for boolean columns; it is a constructor
    parameter, so ``to_config``/``from_config`` keep it."""

    semantic_type = "set"

    @classmethod
    def build(cls, name: str, semantic_type: str, context) -> "SetCodec":
        return cls(name, semantic_type="boolean" if semantic_type == "boolean" else "set").bind(context)

    def __init__(self, name: str = "", semantic_type: str = "set", max_members: int = MAX_MEMBERS):
        super().__init__(name, semantic_type=semantic_type, max_members=max_members)
        self.semantic_type = semantic_type
        self.max_members = int(max_members)

    @property
    def _normalise(self):
        return normalise_boolean if self.semantic_type == "boolean" else None

    def fit(self, values: pd.Series) -> "SetCodec":
        inv, texts = column_texts(values, self._normalise)
        counts = np.bincount(inv[inv >= 0], minlength=len(texts))
        order = sorted(range(len(texts)), key=lambda i: (-counts[i], texts[i]))
        keep = order[:self.max_members]
        self.members_ = [texts[i] for i in keep]
        self.counts_ = [int(counts[i]) for i in keep]
        self.n_rows_, self.n_present_ = int(len(inv)), int(counts.sum())
        self.n_oov_rows_ = int(self.n_present_ - sum(self.counts_))
        self.ordinal_ = None if self.semantic_type == "boolean" else self._detect_ordinal(self.members_)
        self._build()
        return self

    @staticmethod
    def _detect_ordinal(members: list[str]) -> dict | None:
        """{"kind": "scale", "scale": name} or {"kind": "numeric", "values": sorted numbers} or None."""
        if len(members) < 2:
            return None
        keys = {_scale_key(m) for m in members}
        for name, ranks in _SCALE_RANKS.items():
            if keys <= ranks.keys():
                return {"kind": "scale", "scale": name}
        nums = [_as_number(m) for m in members]
        if all(x is not None for x in nums):
            return {"kind": "numeric", "values": sorted(set(nums))}
        return None

    def _build(self) -> None:
        self.index_ = {m: i + 1 for i, m in enumerate(self.members_)}

    def _ranks(self, texts: list[str]) -> np.ndarray:
        """Rank in [0, 1] per text, -1 when not ordinal / not on the scale."""
        out = np.full(len(texts), -1.0, dtype=np.float32)
        o = self.ordinal_
        if o is None:
            return out
        if o["kind"] == "scale":
            ranks = _SCALE_RANKS[o["scale"]]
            return np.array([ranks.get(_scale_key(t), -1.0) for t in texts], dtype=np.float32)
        xs = np.asarray(o["values"], dtype=np.float64)
        steps = np.linspace(0.0, 1.0, len(xs))
        for i, t in enumerate(texts):
            x = _as_number(t)
            if x is not None:
                out[i] = np.interp(x, xs, steps)
        return out

    def transform(self, values: pd.Series) -> dict[str, torch.Tensor]:
        inv, texts = column_texts(values, self._normalise)
        idx = np.array([self.index_.get(t, 0) for t in texts], dtype=np.int64)
        sem_texts = [t.replace("_", " ").strip() or t for t in texts]
        uniq = list(dict.fromkeys(sem_texts))
        where = {t: i for i, t in enumerate(uniq)}
        sem = embed_distinct(uniq)[[where[t] for t in sem_texts]] if texts else np.zeros((0, 384), np.float32)
        semantic, rows = per_distinct(sem, inv, 0.0)
        return {"idx": torch.from_numpy(gather(idx, inv, 0)), "semantic": semantic, "semantic" + ROWS: rows,
                "ordinal": torch.from_numpy(gather(self._ranks(texts), inv, -1.0)),
                "missing": torch.from_numpy(inv < 0)}

    def ordinal_order(self) -> list[str] | None:
        """Members from lowest to highest rank, when the column is ordinal."""
        if self.ordinal_ is None:
            return None
        ranks = self._ranks(self.members_)
        return [m for _, m in sorted(zip(ranks.tolist(), self.members_))]

    def get_state(self) -> dict:
        return {"members": list(self.members_), "counts": list(self.counts_), "n_rows": self.n_rows_,
                "n_present": self.n_present_, "n_oov_rows": self.n_oov_rows_, "ordinal": self.ordinal_}

    def set_state(self, state: dict) -> "SetCodec":
        self.members_, self.counts_ = list(state["members"]), [int(c) for c in state["counts"]]
        self.n_rows_, self.n_present_ = int(state["n_rows"]), int(state["n_present"])
        self.n_oov_rows_, self.ordinal_ = int(state["n_oov_rows"]), state["ordinal"]
        self._build()
        return self

    def encoder_kwargs(self) -> dict:
        return {"n_members": len(self.members_), "is_ordinal": self.ordinal_ is not None}

    def report(self) -> dict:
        n = max(self.n_present_, 1)
        out = {"semantic_type": self.semantic_type, "n_members": len(self.members_),
               "top_members": [{"value": m, "count": c, "share": round(c / n, 4)}
                               for m, c in zip(self.members_[:10], self.counts_[:10])],
               "oov_share": round(self.n_oov_rows_ / n, 4),
               "missing_share": round(1 - self.n_present_ / self.n_rows_, 4) if self.n_rows_ else 0.0,
               "is_ordinal": self.ordinal_ is not None}
        if self.ordinal_ is not None:
            out["ordinal_order"] = self.ordinal_order()
            out["ordinal_kind"] = self.ordinal_.get("scale", "numeric")
        return out


__all__ = ["SetCodec", "SCALES", "normalise_boolean"]
