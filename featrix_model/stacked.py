"""Linear algebra of K same-shaped modules at once, their parameters stacked along a leading axis
at every call (gradients reach each module's own parameters; saved weights keep their per-module
layout): K linears as one ``baddbmm``, K embedding-table lookups as one lookup in their
concatenation, K layer norms as one normalisation with stacked affine parameters. Used by the
column-encoder banks (``featrix_model.encoders.bank``) and the joint encoder's in-converters."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def linear(x: torch.Tensor, layers: list[nn.Linear]) -> torch.Tensor:
    """(K, n, d_in) through K linears → (K, n, d_out)."""
    w = torch.stack([m.weight for m in layers])
    b = torch.stack([m.bias for m in layers])
    return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))


def mlp(x: torch.Tensor, seqs: list[nn.Sequential], training: bool) -> torch.Tensor:
    """Linear → GELU → [Dropout] → Linear, K at once (the dropout rate is the first one's: the
    trainer schedules one rate for every encoder)."""
    h = F.gelu(linear(x, [s[0] for s in seqs]))
    if len(seqs[0]) == 4:
        h = F.dropout(h, seqs[0][2].p, training)
    return linear(h, [s[-1] for s in seqs])


def layer_norm(x: torch.Tensor, norms: list[nn.LayerNorm]) -> torch.Tensor:
    w = torch.stack([m.weight for m in norms]).unsqueeze(1)
    b = torch.stack([m.bias for m in norms]).unsqueeze(1)
    return F.layer_norm(x, x.shape[-1:], eps=norms[0].eps) * w + b


def lookup(idx: torch.Tensor, tables: list[list[nn.Embedding]]) -> torch.Tensor:
    """idx (K, n, T) into each encoder's T tables → (K, n, T, d), one lookup in their concatenation."""
    weights = [e.weight for row in tables for e in row]
    sizes = torch.tensor([0] + [w.shape[0] for w in weights[:-1]], device=idx.device)
    offsets = torch.cumsum(sizes, 0).view(len(tables), 1, -1)
    return F.embedding(idx + offsets, torch.cat(weights))
