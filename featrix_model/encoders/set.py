"""SetEncoder: spec §5.3 "Set/Categorical Encoding" - a learned path and a semantic path mixed by a gate.

Spec §5.3, implemented literally:

* LEARNED PATH - ``nn.Embedding(n_members + 1, d_model)`` (index 0 = unknown, see ``SetCodec``).
* SEMANTIC PATH - ``BERT(value)`` (the codec's ``semantic`` tensor) → ``Linear(384 → d_model)``.
* GATING NETWORK - "MLP([learned, semantic]) → sigmoid(g)", "output = g * learned + (1-g) *
  semantic", per sample. "Initialization biases toward semantic (~38% learned, 62% semantic)": the
  gate's last layer starts with zero weights and bias logit(0.38), so g = 0.38 for every row.
* "When an unseen category appears at inference, the semantic path is used exclusively": rows with
  idx 0 get g = 0.
* "When ordinal values are detected ... ordinal embeddings with smooth positional patterns (sin/cos)
  preserve order information": with ``is_ordinal``, sin/cos of the rank at ``n_freqs`` frequencies
  (π·2^k·rank) → Linear → added to the output (rows with rank -1 add nothing).

Semantic floor, spec §10 "Weight Initialization": "For SetEncoders, a semantic floor starts at 70%
and gradually relaxes to 10%, forcing the model to leverage pre-trained semantics before learning
custom patterns." The floor lives in a buffer (``semantic_floor``, 0.7 at construction) and the
trainer's ``on_epoch_end(epoch, progress)`` sets it to 0.7 → 0.1 linearly in progress. The gate is
capped so that (1 - g) >= floor, i.e. g_eff = min(g, 1 - floor); a fresh encoder therefore mixes
30% learned / 70% semantic (the raw gate, 0.38, is above the 0.30 cap) until the floor relaxes
below 0.62. While a row's gate is capped it gets no gradient through g (the learned and semantic
paths still do).

Initial scales: both paths start with outputs of norm ~1 (learned rows N(0, 1/d); the semantic
Linear is a random N(0, 1/d) projection of the unit-norm sentence vector, which roughly keeps its
cosine structure), so the 70% semantic share is really semantic at the start. Dropout (``dropout``,
scheduled by the trainer through ``set_dropout``) acts on the learned path only, nudging rare
members towards their semantics.

Parameters at d_model=64, gate hidden 16: (n_members+1)·64 + 24,640 (semantic) + 2,081 (gate)
(+ 832 when ordinal) + 64 (missing): 10 members 27.5K, 100 members 33.2K; a column at the codec's
2,048-member cap is 158K (the learned table dominates).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from featrix_model.encoders.base import ColumnEncoder

SEMANTIC_DIM = 384
INIT_LEARNED_SHARE = 0.38
FLOOR_START, FLOOR_END = 0.7, 0.1


class SetEncoder(ColumnEncoder):
    """(idx, semantic, ordinal, missing) → (full_vec (n, d_model), short_vec (n, 3)); see module docstring."""

    def __init__(self, d_model: int, n_members: int, is_ordinal: bool = False, dropout: float = 0.1,
                 gate_hidden: int | None = None, n_freqs: int = 6):
        super().__init__(d_model)
        self.n_members, self.is_ordinal, self.n_freqs = int(n_members), bool(is_ordinal), int(n_freqs)
        self.learned = nn.Embedding(self.n_members + 1, d_model)
        nn.init.normal_(self.learned.weight, std=d_model ** -0.5)
        self.semantic = nn.Linear(SEMANTIC_DIM, d_model)
        nn.init.normal_(self.semantic.weight, std=d_model ** -0.5)
        nn.init.zeros_(self.semantic.bias)
        hidden = gate_hidden or max(8, d_model // 4)
        self.gate = nn.Sequential(nn.Linear(2 * d_model, hidden), nn.GELU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.gate[2].weight)
        nn.init.constant_(self.gate[2].bias, math.log(INIT_LEARNED_SHARE / (1 - INIT_LEARNED_SHARE)))
        self.dropout = nn.Dropout(dropout)
        if self.is_ordinal:
            self.ordinal = nn.Linear(2 * self.n_freqs, d_model)
            self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(self.n_freqs, dtype=torch.float32))
        self.register_buffer("semantic_floor", torch.tensor(FLOOR_START))
        self._gate_sum = self._gate_count = None

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        idx = batch["idx"].long()
        learned = self.dropout(self.learned(idx))
        semantic = self.semantic(batch["semantic"].to(self.semantic.weight.dtype))
        g = torch.sigmoid(self.gate(torch.cat([learned, semantic], dim=-1)))
        g = torch.minimum(g, 1 - self.semantic_floor)  # (1 - g) >= semantic floor
        known = (idx > 0).unsqueeze(-1)
        g = torch.where(known, g, torch.zeros_like(g))  # unseen → semantic path only
        out = g * learned + (1 - g) * semantic
        if self.is_ordinal:
            rank = batch["ordinal"].to(out.dtype).unsqueeze(-1)
            ang = rank * self.freqs
            ordv = self.ordinal(torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1))
            out = out + torch.where(rank >= 0, ordv, torch.zeros_like(ordv))
        present = known.squeeze(-1) & ~batch["missing"].to(idx.device)
        # diagnostics, written past nn.Module.__setattr__ (its Parameter check costs ~0.5 ms a call)
        self.__dict__.update(_gate_sum=g.detach().squeeze(-1)[present].sum(), _gate_count=present.sum())
        return out

    def on_epoch_end(self, epoch: int, progress: float) -> list[str]:
        """Relax the semantic floor 0.7 → 0.1 linearly with training progress (spec §10)."""
        p = min(max(float(progress), 0.0), 1.0)
        old = float(self.semantic_floor)
        new = FLOOR_START + (FLOOR_END - FLOOR_START) * p
        self.semantic_floor.fill_(new)
        if round(old, 1) != round(new, 1):
            return [f"semantic floor relaxed from {old:.0%} to {new:.0%} (learned share capped at {1 - new:.0%})"]
        return []

    def report(self) -> dict:
        out = {"semantic_floor": round(float(self.semantic_floor), 4), "n_members": self.n_members,
               "is_ordinal": self.is_ordinal}
        if self._gate_count is not None and int(self._gate_count) > 0:
            share = float(self._gate_sum) / int(self._gate_count)
            out.update(learned_share=round(share, 4), semantic_share=round(1 - share, 4))
        return out


__all__ = ["SetEncoder"]
