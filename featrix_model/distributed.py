"""Train one table's space data-parallel on several processes of this machine (DDP over gloo on CPU,
NCCL on GPUs): ``fit_data_parallel(df, world_size=2)``.

    from featrix_model.distributed import fit_data_parallel
    es = fit_data_parallel(df, world_size=2)           # same arguments as EmbeddingSpace.fit

Each process runs the whole ``EmbeddingSpace.fit`` (codecs, plan, validation, pruning: the same on
every rank) and trains its share of every batch (``training.parallel``); rank 0 writes the artifact and
the caller gets it back loaded. Before that, every rank's weights are compared: ranks that ended apart
raise instead of returning one of them.

Across machines, start the processes with ``torchrun`` and call ``torch.distributed.init_process_group``
then ``EmbeddingSpace.fit`` in each: a fit in an initialised process group trains data-parallel.
"""

from __future__ import annotations

import datetime
import hashlib
import tempfile
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from featrix_model.io import hash_weights
from featrix_model.training import parallel

ARTIFACT = "space"


def fit_data_parallel(df: pd.DataFrame, world_size: int = 2, *, backend: str | None = None,
                      timeout_s: float = 1800.0, **fit_kwargs):
    """``EmbeddingSpace.fit(df, **fit_kwargs)`` on ``world_size`` processes; returns the trained space.

    ``backend``: ``gloo`` on CPU (the default without CUDA), ``nccl`` with one GPU per rank (the
    default with CUDA; rank r trains on ``cuda:r``). ``timeout_s``: how long a rank waits for the
    others at a collective before it fails (a crashed rank then stops the fit instead of hanging it)."""
    from featrix_model.space import EmbeddingSpace

    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    if fit_kwargs.get("checkpoint_dir") is not None:  # refused before any process starts
        raise ValueError(parallel.NO_CHECKPOINTS)
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl" and torch.cuda.device_count() < world_size:
        raise ValueError(f"backend nccl needs one GPU per rank: {world_size} ranks, "
                         f"{torch.cuda.device_count()} GPU(s) visible; use backend='gloo' or fewer ranks")
    with tempfile.TemporaryDirectory(prefix="featrix-ddp-") as tmp:
        # the frame reaches the ranks through the process start (spawn: a fresh interpreter each,
        # no forked torch thread pools), as the function's argument
        mp.start_processes(_rank_main, args=(world_size, backend, tmp, timeout_s, df, fit_kwargs),
                           nprocs=world_size, join=True, start_method="spawn")
        return EmbeddingSpace.load(Path(tmp) / ARTIFACT)


def _rank_main(rank: int, world_size: int, backend: str, tmp: str, timeout_s: float, df: pd.DataFrame,
               fit_kwargs: dict) -> None:
    from featrix_model.space import EmbeddingSpace

    extra = {}
    if backend == "nccl":  # the GPU collectives on NCCL, the trainer's few CPU ones (losses, digests) on gloo
        torch.cuda.set_device(rank)
        backend, extra = "cpu:gloo,cuda:nccl", {"device_id": torch.device("cuda", rank)}
    dist.init_process_group(backend, init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=timeout_s), **extra)
    try:
        kwargs = dict(fit_kwargs)
        if extra:
            kwargs["device"] = f"cuda:{rank}"
        if rank:
            kwargs["progress"] = False
            kwargs["output_dir"] = None  # rank 0 writes the live timeline
        es = EmbeddingSpace.fit(df, **kwargs)
        check_in_step(es.net)
        if rank == 0:
            es.save(Path(tmp) / ARTIFACT)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def weights_digest(module: torch.nn.Module) -> bytes:
    """SHA-256 of every parameter and buffer (``io.hash_weights``)."""
    h = hashlib.sha256()
    hash_weights(h, module)
    return h.digest()


def check_in_step(module: torch.nn.Module) -> None:
    """Raise on every rank unless all ranks hold the same weights."""
    mine = torch.frombuffer(bytearray(weights_digest(module)), dtype=torch.uint8)  # a CPU (gloo) collective
    every = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    apart = [r for r, d in enumerate(every) if not torch.equal(d, every[0])]
    if apart:
        raise RuntimeError(f"data-parallel training ended with different weights on ranks {apart} than on rank 0: "
                           "the ranks took different decisions; please report this with the table's shape")
