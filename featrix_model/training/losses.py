"""Complementary masks and the four losses of spec §8–§9.

* joint — InfoNCE: each masked view's row embedding should find its own unmasked embedding
  among the batch.
* marginal — per-column InfoNCE: predict each masked column's encoding from the row embedding;
  four views (full/short × mask1/mask2). Per-column losses give MI = log(batch) − loss.
* spread — cross-entropy on the self-similarity matrix: each row most similar to itself
  (anti-collapse).
* reconstruction — MSE of decoded scalar values (z-scored) from the unmasked embedding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def complementary_masks(present: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Visibility of view 1 (B, C) bool; view 2 is its complement (spec §8).

    Each row masks 40–60 % of its columns, less when the row is sparse (many nulls): the ratio is
    scaled by (1 − null_share / 2). Every view keeps at least one visible and one masked column.
    """
    B, C = present.shape
    null_share = 1.0 - present.float().mean(dim=1)
    ratio = (0.4 + 0.2 * torch.rand(B, generator=generator)) * (1.0 - null_share / 2)
    n_masked = (ratio * C).round().clamp(1, max(1, C - 1)).long()
    order = torch.rand(B, C, generator=generator).argsort(dim=1)
    ranks = order.argsort(dim=1)
    masked = ranks < n_masked.unsqueeze(1)
    return ~masked


def complementary_views(present: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Visibility (B, C) of the two views of spec §8: view 1 from ``complementary_masks``, view 2 its
    complement (what one view masks, the other reveals)."""
    vis1 = complementary_masks(present, generator)
    return vis1, ~vis1


def info_nce(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-row InfoNCE loss (B,): row i's positive is keys[i]; inputs are L2-normalised."""
    logits = query @ keys.T / temperature
    return F.cross_entropy(logits, torch.arange(query.shape[0], device=query.device), reduction="none")


def joint_loss(views: list[torch.Tensor], unmasked: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.stack([info_nce(v, unmasked, temperature).mean() for v in views]).mean()


def spread_loss(emb: torch.Tensor, temperature: float) -> torch.Tensor:
    return info_nce(emb, emb, temperature).mean()


def marginal_losses(pred_full: torch.Tensor, pred_short: torch.Tensor, target_full: torch.Tensor,
                    target_short: torch.Tensor, masked: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-column InfoNCE over rows where the column is masked in this view → (C,) losses.

    pred_*: (B, C, k) predictions from the row embedding; target_*: (B, C, k) column encodings.
    Columns masked in no row of the batch get NaN (the caller averages them out).
    """
    B, C, _ = pred_full.shape
    pf, tf = F.normalize(pred_full, dim=-1), F.normalize(target_full, dim=-1)
    ps, ts = F.normalize(pred_short, dim=-1), F.normalize(target_short, dim=-1)
    # (C, B, B) logits: every column scored against every row's true encoding of that column
    lf = torch.einsum("bcd,ecd->cbe", pf, tf) / temperature
    ls = torch.einsum("bcd,ecd->cbe", ps, ts) / temperature
    target = torch.arange(B, device=pred_full.device).expand(C, B)
    ce = (F.cross_entropy(lf.reshape(C * B, B), target.reshape(-1), reduction="none")
          + F.cross_entropy(ls.reshape(C * B, B), target.reshape(-1), reduction="none")).reshape(C, B) / 2
    w = masked.T.float()  # (C, B)
    count = w.sum(dim=1)
    return torch.where(count > 0, (ce * w).sum(dim=1) / count.clamp(min=1), torch.full_like(count, float("nan")))


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """MSE over present scalar values; pred/target/present are (B, S)."""
    if pred.numel() == 0:
        return pred.new_zeros(())
    w = present.float()
    return ((pred - target) ** 2 * w).sum() / w.sum().clamp(min=1)


def mi_bits(loss_nats: torch.Tensor | float, batch_size: int) -> float:
    """Spec §9: MI = log(batch) − loss, reported in bits."""
    return float((math.log(batch_size) - float(loss_nats)) / math.log(2))
