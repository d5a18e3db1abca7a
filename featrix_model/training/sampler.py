"""Which rows make up each training batch of an epoch.

Table spaces follow the usual drop-last rule: ``len // batch`` full batches of a fresh permutation
(the few rows left over are in the next epoch's permutation). The parent-level space of a
relational space uses ``every_row=True`` — the parent-level sampler of spec §1.3 "The customer-level
model sees each customer exactly once": the permutation is cut into ``ceil(len / batch)`` batches
whose sizes differ by at most one, so every parent row is in exactly one batch per epoch and no
batch is smaller than half the batch size (InfoNCE needs in-batch negatives).
"""

from __future__ import annotations

import math

import torch


def epoch_batches(order: torch.Tensor, batch_size: int, every_row: bool = False) -> list[torch.Tensor]:
    """Index tensors of the epoch's batches, in order; ``order`` is the epoch's permutation."""
    n = len(order)
    bs = max(1, min(batch_size, n))
    if every_row:
        return list(torch.tensor_split(order, max(1, math.ceil(n / bs))))
    return [order[b * bs:(b + 1) * bs] for b in range(max(1, n // bs))]
