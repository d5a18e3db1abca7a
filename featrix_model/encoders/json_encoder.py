"""JSON column encoder: projection of the child space's row embedding (spec §5.5)."""

from __future__ import annotations

import torch
from torch import nn

from featrix_model.encoders.base import ColumnEncoder


class JsonEncoder(ColumnEncoder):
    """``Linear(child_d_model → d_model)`` over the frozen child embedding."""

    def __init__(self, d_model: int, child_dim: int):
        super().__init__(d_model)
        self.project = nn.Linear(child_dim, d_model)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.project(batch["child"])
