"""The codec contract shared by every column type."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

ROWS = ".rows"  # suffix: ``key + ROWS`` holds each row's index into ``key``, a table of per-distinct values


def per_distinct(values: np.ndarray, inv: np.ndarray, fill) -> tuple[torch.Tensor, torch.Tensor]:
    """A per-distinct array kept once (plus a ``fill`` row for missing values) and each row's index
    into it — instead of a copy per row: a (n, 384) sentence vector per row was 1.5 GB per column at
    1M rows, and a column's rows repeat its few distinct values. ``take_rows`` gathers per row."""
    pad = np.full((1, *values.shape[1:]), fill, dtype=values.dtype)
    rows = np.where(inv < 0, len(values), inv).astype(np.int64)
    return torch.from_numpy(np.concatenate([values, pad])), torch.from_numpy(rows)


def take_rows(tensors: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rows ``idx`` of one column's codec tensors: row-aligned tensors indexed, per-distinct tables
    (``per_distinct``) looked up through their row index — the per-row form encoders take."""
    return {k: v[tensors[k + ROWS][idx]] if k + ROWS in tensors else v[idx]
            for k, v in tensors.items() if not k.endswith(ROWS)}


def expand(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every row of one column's codec tensors in per-row form (``take_rows`` of all rows)."""
    return take_rows(tensors, torch.arange(len(tensors["missing"])))


def per_row(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` as they are when already per row (a batch from ``take_rows``), else ``expand``ed:
    an encoder takes a codec's output directly as well as a training batch."""
    return expand(tensors) if any(k.endswith(ROWS) for k in tensors) else tensors


def as_text(values: pd.Series) -> pd.Series:
    """``values.astype(str)``, safe for ``bytes`` cells that are not UTF-8 (they show as ``b'...'``)."""
    try:
        return values.astype(str)
    except UnicodeDecodeError:
        return values.map(str)


@dataclass(frozen=True)
class CodecContext:
    """What a codec may need besides its column's values, handed in by the space that fits it
    (dependency injection: codecs never import the space). ``seed``: the fit's seed. ``space_class``
    and ``column_types``: for codecs that train an embedding space of their own (JSON columns)."""

    seed: int = 0
    space_class: type | None = None
    column_types: dict | None = None


class Codec(ABC):
    """Fitted value → tensor transform for one column.

    scikit-learn conventions: ``__init__`` only stores parameters; ``fit`` learns state (attributes
    ending in ``_``) and returns ``self``. Subclasses implement:

    * ``fit(values)`` — learn statistics / vocabularies from the training column.
    * ``transform(values) -> dict[str, Tensor]`` — batch-first tensors with ``len(values)`` rows, or
      a per-distinct table ``key`` with its row index ``key + ROWS`` (``per_distinct``; ``take_rows``
      and ``expand`` give the per-row form encoders take).
      Always includes ``"missing"``: a bool tensor (n,) marking null / unparseable values (the
      encoder swaps in its learned replacement embedding there, spec §1.4). Must be vectorised.
    * ``get_state() / set_state(state)`` — fitted state as JSON-able dict (no pickle).
    * ``encoder_kwargs()`` — keyword arguments for the matching encoder's constructor (besides d_model).
    * ``report()`` — plain-words summary for ``EmbeddingSpace.column_report()``.

    Scalar-like codecs may also return ``"recon_target"`` (n,) float: the normalised value used
    by the reconstruction loss (spec §9).
    """

    semantic_type: ClassVar[str] = ""

    def __init__(self, name: str = "", **params: Any):
        self.name = name
        self.params = params

    @abstractmethod
    def fit(self, values: pd.Series) -> "Codec":
        """See the class docstring."""

    @abstractmethod
    def transform(self, values: pd.Series) -> dict[str, torch.Tensor]:
        """See the class docstring."""

    @abstractmethod
    def get_state(self) -> dict:
        """See the class docstring."""

    @abstractmethod
    def set_state(self, state: dict) -> "Codec":
        """See the class docstring."""

    @classmethod
    def build(cls, name: str, semantic_type: str, context: CodecContext) -> "Codec":
        """An unfitted codec for column ``name`` detected as ``semantic_type``."""
        return cls(name).bind(context)

    def bind(self, context: CodecContext) -> "Codec":
        """Take what this codec needs from the fitting or loading space (most need nothing)."""
        return self

    def encoder_kwargs(self) -> dict:
        return {}

    def report(self) -> dict:
        return {}

    # ------------------------------------------------------------------ serialisation

    def to_config(self) -> dict:
        return {"semantic_type": self.semantic_type, "class": type(self).__name__, "name": self.name,
                "params": self.params, "state": self.get_state()}

    @classmethod
    def from_config(cls, config: dict, context: CodecContext | None = None) -> "Codec":
        codec = cls(config.get("name", ""), **config.get("params", {})).bind(context or CodecContext())
        return codec.set_state(config["state"])
