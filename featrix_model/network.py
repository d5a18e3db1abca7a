"""The whole trainable network of an embedding space: column encoders + joint encoder + heads."""

from __future__ import annotations

import torch
from torch import nn

from featrix_model.encoders.base import ColumnEncoder
from featrix_model.joint import JointEncoder

Batch = dict[str, dict[str, torch.Tensor]]


class EmbeddingNetwork(nn.Module):
    """Encoders (one per column, in column order) feed the joint encoder.

    Heads used only in training: per-column predictors from the row embedding (marginal loss,
    spec §8 "predict_column(joint, col_idx)"), their 3-d short counterparts, and scalar decoders
    (reconstruction loss, spec §9).
    """

    def __init__(self, columns: list[str], encoders: list[ColumnEncoder], joint: JointEncoder,
                 scalar_columns: list[int]):
        super().__init__()
        self.columns = list(columns)
        self.encoders = nn.ModuleList(encoders)
        self.joint = joint
        d, C = joint.d_model, len(columns)
        self.predict_full = nn.Parameter(torch.randn(C, d, d) / d**0.5)
        self.predict_bias = nn.Parameter(torch.zeros(C, d))
        self.predict_short = nn.Parameter(torch.randn(C, d, 3) / d**0.5)
        self.register_buffer("scalar_index", torch.tensor(scalar_columns, dtype=torch.long), persistent=False)
        self.decoder = nn.Linear(d, len(scalar_columns)) if scalar_columns else None

    @property
    def device(self) -> torch.device:
        return self.predict_bias.device

    def encode_columns(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        fulls, shorts = zip(*(enc(batch[name]) for name, enc in zip(self.columns, self.encoders)))
        return torch.stack(fulls, dim=1), torch.stack(shorts, dim=1)

    def present(self, batch: Batch) -> torch.Tensor:
        return torch.stack([~batch[name]["missing"] for name in self.columns], dim=1)

    def forward(self, batch: Batch, visible: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        cols, _ = self.encode_columns(batch)
        if visible is None:
            visible = torch.ones(cols.shape[:2], dtype=torch.bool, device=cols.device)
        return self.joint(cols, visible)

    def predict_columns(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full = torch.einsum("bd,cde->bce", emb, self.predict_full) + self.predict_bias
        short = torch.einsum("bd,cde->bce", emb, self.predict_short)
        return full, short

    def reconstruct(self, emb: torch.Tensor) -> torch.Tensor:
        if self.decoder is None:
            return emb.new_zeros(emb.shape[0], 0)
        return self.decoder(emb)

    def set_dropout(self, p: float) -> None:
        for enc in self.encoders:
            enc.set_dropout(p)
        self.joint.set_dropout(p)
