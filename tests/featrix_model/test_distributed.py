"""Data-parallel training (``featrix_model.distributed``, ``training.parallel``): two processes on the
gloo backend train a space whose probe quality matches one process's within noise, the same seed and
world size give the same bytes, and ranks that drift apart are caught, not returned.

The probe is the one of ``test_space``: the planted latent group is no input column and is read from
held-out rows with half of its columns hidden (an untrained network scores 0.43-0.54 there)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from featrix_model import EmbeddingSpace
from featrix_model.distributed import fit_data_parallel, weights_digest
from tests.featrix_model.test_space import BUDGET, PARTIAL_PROBE_MIN, partial_view_probe, planted, split

PROBE_TOLERANCE = 0.05  # two processes vs one, same budget: measured 0.79 vs 0.79 (difference < 0.01)


@pytest.fixture(scope="module")
def rows():
    return split(*planted())


@pytest.fixture(scope="module")
def two_ranks(rows):
    return fit_data_parallel(rows[0], world_size=2, time_budget_s=BUDGET, seed=0, progress=False, timeout_s=300)


def test_two_processes_train_as_well_as_one(rows, two_ranks):
    _, _, held, held_g = rows
    one = EmbeddingSpace.fit(rows[0], time_budget_s=BUDGET, seed=0, progress=False)
    assert one.config.world_size == 1 and two_ranks.config.world_size == 2
    assert any(d.startswith("world_size: 2 processes") for d in two_ranks.decisions)
    assert two_ranks.timeline_["metadata"]["steps"] == one.timeline_["metadata"]["steps"]  # whole batches per step
    single, parallel = partial_view_probe(one, held, held_g), partial_view_probe(two_ranks, held, held_g)
    assert parallel > PARTIAL_PROBE_MIN and abs(parallel - single) <= PROBE_TOLERANCE, (
        f"probe accuracy with half the latent's columns hidden: two processes {parallel:.3f}, one {single:.3f}")
    assert weights_digest(one.net) != weights_digest(two_ranks.net)  # it did train apart from one process


def test_same_seed_and_world_size_give_the_same_bytes(rows, two_ranks):
    again = fit_data_parallel(rows[0], world_size=2, time_budget_s=BUDGET, seed=0, progress=False, timeout_s=300)
    assert weights_digest(again.net) == weights_digest(two_ranks.net)
    held = rows[2].iloc[:50]
    assert np.array_equal(again.encode(held), two_ranks.encode(held))


def _unsynchronised_rank(rank: int, tmp: str, rows) -> None:
    """A rank of a group whose training loop skips DDP (each rank steps on its own rows' gradients)."""
    import datetime

    import torch.distributed as dist

    from featrix_model.distributed import check_in_step
    from featrix_model.training import parallel

    parallel.objective = lambda net, losses: losses  # the break: no gradient averaging
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=300))
    try:
        check_in_step(EmbeddingSpace.fit(rows, epochs=2, seed=0, progress=False).net)
    finally:
        dist.destroy_process_group()


def test_ranks_that_drift_apart_raise(rows, tmp_path):
    """Without DDP's gradient averaging each rank steps on its own half of the batch and the weights
    part: the check before saving must refuse them."""
    with pytest.raises(mp.ProcessRaisedException, match="different weights on ranks"):
        mp.start_processes(_unsynchronised_rank, args=(str(tmp_path), rows[0].iloc[:400]), nprocs=2,
                           start_method="spawn")


def test_checkpoints_are_refused_with_a_reason(rows, tmp_path):
    with pytest.raises(ValueError, match="checkpoint_dir is not supported"):
        fit_data_parallel(rows[0], world_size=2, checkpoint_dir=tmp_path)
    assert torch.distributed.is_initialized() is False
