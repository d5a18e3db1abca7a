"""VectorEncoder: spec §5.5 "Pre-computed vectors from another model pass through directly or with
optional MLP transformation".

* ``dim == d_model`` (and no ``hidden`` given): a Linear(d_model → d_model) initialised to the
  identity with zero bias, so the vector passes through unchanged at the start and training may
  adapt it.
* otherwise: MLP dim → hidden (default d_model) → d_model.

Input: the ``VectorCodec``'s standardised ``vector`` float32 (n, dim). Parameters at d_model=64:
4,160 for a 64-d vector; 28,864 for a 384-d vector (hidden 64); + 64 for the missing embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from featrix_model.encoders.base import ColumnEncoder


class VectorEncoder(ColumnEncoder):
    def __init__(self, d_model: int, dim: int, hidden: int | None = None, dropout: float = 0.1):
        super().__init__(d_model)
        self.dim = int(dim)
        self.passthrough = self.dim == d_model and hidden is None
        if self.passthrough:
            self.net = nn.Linear(d_model, d_model)
            with torch.no_grad():
                self.net.weight.copy_(torch.eye(d_model))
                self.net.bias.zero_()
        else:
            h = hidden or d_model
            self.net = nn.Sequential(nn.Linear(self.dim, h), nn.GELU(), nn.Dropout(dropout), nn.Linear(h, d_model))

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        first = self.net if self.passthrough else self.net[0]
        return self.net(batch["vector"].to(first.weight.dtype))

    def report(self) -> dict:
        return {"dim": self.dim, "mode": "pass-through (identity-initialised Linear)" if self.passthrough else "MLP"}


__all__ = ["VectorEncoder"]
