"""The concurrency pool and the order of the training steps, answered in one place.

Each embedding space, relational space and predictor trains for minutes on every thread torch is
given. The Dagster instance's ``concurrency: pools:`` settings cap how many steps of a pool run at
once across all runs, whatever executor runs them (in one process, in Kubernetes pods, on Celery
workers): that keeps a scaled-out deployment from stacking training steps onto the same machines.
An instance that sets no limit (the local one scripts/bootstrap.sh writes) runs them unlimited, so
nothing changes on one machine.

Which ready step starts first is each training step's ``dagster/priority`` tag: the number of
training steps that wait on it, directly or through others (``waiting``). The flights space, which
the planes' relational space, its predictor and the flights predictor all wait on, starts before
the airports space that nothing waits on; with two steps at a time (``FEATRIX_STEP_PROCESSES=2``)
the side spaces then train beside the longest chain instead of ahead of it (demo: that chain
started three minutes later when the airports and planes spaces went first).
"""

from __future__ import annotations

from featrix_pipeline.topology import Key, Topology

TRAINING_POOL = "featrix_training"
PRIORITY_TAG = "dagster/priority"


def waiting(topology: Topology, key: Key) -> set[Key]:
    """The training steps that need the space ``key`` first: relational spaces it is a child space
    of, predictors on it, and, through those relational spaces, theirs."""
    relational = {p.key("relational_space") for p in topology.relational
                  if key in {topology[c].key("embedding_space") for c in p.child_tables}}
    out = relational | {t.key("predictor") for t in topology.targets if t.space_key == key}
    for k in relational:
        out |= waiting(topology, k)
    return out


def training_tags(topology: Topology, key: Key) -> dict[str, str]:
    """The op tags of the training step ``key``: its priority (steps that wait on it go first)."""
    return {PRIORITY_TAG: str(len(waiting(topology, key)))}
