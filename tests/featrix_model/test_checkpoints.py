"""Checkpoints and resume (spec §19): a fit killed with SIGKILL and started again with the same
checkpoint folder ends with exactly the weights of an uninterrupted fit; a damaged newest
checkpoint falls back to the one before; another run's checkpoints are not resumed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model import EmbeddingSpace
from featrix_model.training import trainer as trainer_module
from tests.conftest import REPO

EPOCHS = 4


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": rng.choice(list("xyz"), n), "c": a * 2 + rng.normal(size=n) * 0.1,
                         "d": rng.integers(0, 5, n)})


def _same(x: EmbeddingSpace, y: EmbeddingSpace) -> list[str]:
    a, b = x.net.state_dict(), y.net.state_dict()
    return [k for k in a if not torch.equal(a[k], b[k])]


class Stopped(Exception):
    """What ``stopped_after`` raises: the process "dies" right after a checkpoint was written."""


@contextmanager
def stopped_after(epoch: int):
    """Within the block, a fit stops (``Stopped``) right after writing checkpoint ``epoch``."""
    real = trainer_module.Trainer._checkpoint

    def then_stop(self, at, *args):
        real(self, at, *args)
        if at == epoch:
            raise Stopped()
    trainer_module.Trainer._checkpoint = then_stop
    try:
        with pytest.raises(Stopped):
            yield
    finally:
        trainer_module.Trainer._checkpoint = real


@pytest.fixture(scope="module")
def uninterrupted() -> EmbeddingSpace:
    return EmbeddingSpace.fit(_frame(), epochs=EPOCHS, progress=False, seed=0, threads=1)


def test_a_killed_fit_resumes_to_the_same_bytes(uninterrupted, tmp_path):
    folder = tmp_path / "checkpoints"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.featrix_model.test_checkpoints import _frame, EPOCHS
        from featrix_model import EmbeddingSpace
        from featrix_model.training import trainer as T
        real = T.Trainer._checkpoint
        def then_die(self, epoch, *args):
            real(self, epoch, *args)
            if epoch == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind
        T.Trainer._checkpoint = then_die
        EmbeddingSpace.fit(_frame(), epochs=EPOCHS, progress=False, seed=0, threads=1, checkpoint_dir={str(folder)!r})
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "FEATRIX_TORCH_THREADS": "1"})
    assert done.returncode == -9, done.stderr[-2000:]
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-00001", "epoch-00002"]
    resumed = EmbeddingSpace.fit(_frame(), epochs=EPOCHS, progress=False, seed=0, threads=1, checkpoint_dir=folder)
    assert _same(uninterrupted, resumed) == []
    assert [h["epoch"] for h in resumed.timeline] == list(range(1, EPOCHS + 1))
    assert np.array_equal(uninterrupted.encode(_frame()), resumed.encode(_frame()))


def test_a_damaged_last_checkpoint_falls_back_to_the_one_before(uninterrupted, tmp_path, caplog):
    folder = tmp_path / "checkpoints"
    with stopped_after(3):
        EmbeddingSpace.fit(_frame(), epochs=EPOCHS, progress=False, seed=0, threads=1, checkpoint_dir=folder)
    weights = folder / "epoch-00003" / "state.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a half-written last checkpoint
    with caplog.at_level(logging.INFO, logger="featrix_model"):
        resumed = EmbeddingSpace.fit(_frame(), epochs=EPOCHS, progress=False, seed=0, threads=1, checkpoint_dir=folder)
    said = caplog.text
    assert "epoch-00003 is damaged" in said and "resumed after epoch 2 of 4" in said
    assert _same(uninterrupted, resumed) == []


def test_another_runs_checkpoints_are_not_resumed(tmp_path, caplog):
    folder = tmp_path / "checkpoints"
    EmbeddingSpace.fit(_frame(seed=1), epochs=6, progress=False, seed=0, threads=1, checkpoint_dir=folder)
    with caplog.at_level(logging.INFO, logger="featrix_model"):
        fresh = EmbeddingSpace.fit(_frame(), epochs=EPOCHS, progress=False, seed=0, threads=1, checkpoint_dir=folder)
    assert "of another training run" in caplog.text and "resumed after" not in caplog.text
    assert [h["epoch"] for h in fresh.timeline] == list(range(1, EPOCHS + 1))
    # the other run's later epochs were cleared first, not left to outrank (and prune away) this run's
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-00003", "epoch-00004"]


def test_the_pipeline_resumes_a_killed_space_and_clears_its_checkpoints(tmp_path, nyc_frames, caplog):
    from featrix_pipeline.reuse import ArtifactStore
    from featrix_pipeline.settings import FitSettings
    from featrix_pipeline.spaces import train_space
    from featrix_pipeline.spec import load_spec
    from featrix_pipeline.topology import Topology
    from tests.conftest import DEMO_SPEC

    plan = Topology.from_spec(load_spec(DEMO_SPEC))["airports"]
    airports = nyc_frames["airports"].reset_index(drop=True)
    settings = FitSettings(time_budget_s=4, seed=0, threads=1)
    store = ArtifactStore(tmp_path / "airports")
    with stopped_after(1):  # the run dies after its first epoch's checkpoint
        train_space(plan, airports, None, store, settings)
    [kept] = [p for p in store.root.iterdir() if p.name.startswith(".checkpoints-")]
    assert (kept / "epoch-00001").is_dir()
    with caplog.at_level(logging.INFO, logger="featrix_model"):
        summary = train_space(plan, airports, None, store, settings)  # the next run, same key
    assert "resumed after epoch 1" in caplog.text and summary["epochs_run"] >= 1
    assert not kept.exists(), "the published version's checkpoints are removed"


def test_a_relational_space_resumes_to_the_same_bytes(tmp_path):
    from featrix_model import RelationalSpace
    from tests.featrix_model.test_relational import JOIN, customers_and_transactions

    parents, children = customers_and_transactions(120, seed=2, n_empty=5, n_orphans=3)
    parents = parents.drop(columns="churned")
    child = EmbeddingSpace.fit(children.drop(columns=["customer_id"]), epochs=1, progress=False, seed=0, threads=1)

    def fit(folder=None):
        return RelationalSpace.fit({"customers": parents, "transactions": children}, [JOIN], parent="customers",
                                   child_spaces={"transactions": child}, seed=0, exclude=("customer_id",),
                                   epochs=3, threads=1, checkpoint_dir=folder)
    uninterrupted = fit()
    with stopped_after(1):
        fit(tmp_path / "rel")
    assert _same(uninterrupted, fit(tmp_path / "rel")) == []
