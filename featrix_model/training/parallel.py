"""Data-parallel training over ``torch.distributed`` (DDP): what the training loop does differently
when it runs in a process group of more than one process.

Every process (rank) holds the whole table's tensors and the same network, draws the same epoch
permutation and takes its share of each batch (rows ``rank::world``); ``DistributedDataParallel``
averages the gradients, so every rank steps the same optimizer on the same gradient and all ranks keep
identical weights. What decides the fit beyond the gradient — the clipping threshold (from the loss),
the epoch's losses the intervention ladder reads, the per-column losses — is averaged or summed across
ranks, and the validation pass, relationship pruning and early stopping run on every rank on the same
rows with the same weights, so every rank takes the same decisions. Only the column masks of the
masked views are drawn per rank (their own generator: a rank's share of a batch may differ in size,
and the epoch permutations must not drift apart).

The bytes of a fit depend on the world size (a step sees the whole batch through two half-batch
contrastive losses), not on anything else: the same data, settings, seed and world size give the same
bytes (``featrix_model.distributed`` starts the processes on one machine; ``torchrun`` does across
machines)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


NO_CHECKPOINTS = ("checkpoint_dir is not supported in data-parallel training: train without it, or in one process "
                  "to resume from checkpoints")

def world() -> tuple[int, int]:
    """(world size, rank): (1, 0) outside an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class _Objective(torch.nn.Module):
    """The training losses as one module, so ``DistributedDataParallel`` sees every parameter the
    step uses (the loop calls the network's parts, not its ``forward``)."""

    def __init__(self, net: torch.nn.Module, losses: Callable):
        super().__init__()
        self.net = net
        self.__dict__["_losses"] = losses  # a bound method of the trainer, not a submodule

    def forward(self, batch, gen, temperature):
        return self._losses(batch, gen, temperature)


def objective(net: torch.nn.Module, losses: Callable) -> Callable:
    """``losses`` itself in one process; in a process group, the same call through DDP, whose
    backward averages every gradient across ranks (parameters a step leaves unused — pruned
    strategies, inactive relationship pairs — are found per step)."""
    if world()[0] == 1:
        return losses
    return DistributedDataParallel(_Objective(net, losses), find_unused_parameters=True)


def shard(idx: torch.Tensor) -> torch.Tensor:
    """This rank's rows of a batch."""
    size, rank = world()
    return idx if size == 1 else idx[rank::size]


def mean(value: float) -> float:
    """The mean of ``value`` across ranks (itself in one process)."""
    size, _ = world()
    if size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0]) / size


def sums(*arrays: np.ndarray) -> list[np.ndarray]:
    """Each array summed element-wise across ranks (the arrays themselves in one process)."""
    if world()[0] == 1:
        return list(arrays)
    flat = torch.from_numpy(np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays]))
    dist.all_reduce(flat)
    out, at = [], 0
    for a in arrays:
        n = np.asarray(a).size
        out.append(flat[at:at + n].numpy().reshape(np.shape(a)))
        at += n
    return out


def sync_buffers(net: torch.nn.Module) -> None:
    """Rank 0's buffers on every rank. DDP sends them at the start of each step, so after an epoch's
    last step every rank still holds the running statistics (batch norm) of its own rows; the
    validation pass, which reads them, must see the same ones everywhere."""
    if world()[0] == 1:
        return
    for b in net.buffers():
        dist.broadcast(b.data.view(torch.uint8) if b.dtype == torch.bool else b.data, src=0)  # gloo sends no bool
