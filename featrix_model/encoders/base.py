"""The encoder contract shared by every column type."""

from __future__ import annotations

from abc import abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from featrix_model.codecs.base import per_row


class ColumnEncoder(nn.Module):
    """Turns one column's codec tensors into ``(full_vec (n, d_model), short_vec (n, 3))``.

    Subclasses implement ``encode(batch) -> Tensor (n, d_model)`` for present values; this base
    class swaps in the learned replacement embedding where ``batch["missing"]`` is true (spec §1.4:
    "Every encoder has a learned 'replacement embedding' for missing values") and derives the
    short vector (first 3 dimensions, L2-normalised; spec §15).

    Optional hooks the trainer calls:
    * ``on_epoch_end(epoch: int, progress: float) -> list[str]`` — e.g. strategy pruning; returns
      plain-words notes of what changed (logged to the timeline).
    * ``set_dropout(p: float)`` — the scheduled dropout rate (spec §10), if the encoder has dropout.
    * ``report() -> dict`` — learned strategy weights / gates for ``column_report()``.
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = d_model
        self.missing_embedding = nn.Parameter(torch.randn(d_model) / d_model**0.5)

    @abstractmethod
    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embed present values: (n, d_model)."""

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = per_row(batch)
        full = self.encode(batch)
        missing = batch["missing"].to(full.device).unsqueeze(-1)
        full = torch.where(missing, self.missing_embedding.expand_as(full), full)
        short = F.normalize(full[:, :3], dim=-1, eps=1e-6)
        return full, short

    def on_epoch_end(self, epoch: int, progress: float) -> list[str]:
        return []

    def set_dropout(self, p: float) -> None:
        for m in self.modules():
            if isinstance(m, nn.Dropout):
                m.p = p

    def report(self) -> dict:
        return {}
