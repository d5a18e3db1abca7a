"""The code location for Kubernetes: the project's definitions with every step in a pod of its own.

``dagster_k8s.k8s_job_executor`` starts one Kubernetes Job per step. The pods inherit what the run
launcher and the code location give them (image, env, secrets, the shared FEATRIX_HOME volume: see
deploy/k8s/values.yaml), so every step reads and writes the same artifact store and warehouse.

What this module adds is the size of each pod. The scheduler only keeps a node from being
overcommitted when pods say what they need, so every step asks for a little and the training
steps (the ``TRAINING_POOL`` assets: spaces, relational spaces, predictors) ask for as many CPUs
as torch uses threads (``FEATRIX_TORCH_THREADS``, the setting the model resource reads) and for
the memory a training step of the demo warehouse needs, with limits so that a step cannot take
more than it asked for. How many of them run at once across all runs is the instance's pool limit
(``concurrency.pools`` in values.yaml).

Serve it with ``dagster api grpc -m deploy.k8s.definitions`` from the repository root (the image of
deploy/k8s/Dockerfile does); the spec comes from $FEATRIX_SPEC as everywhere else.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster_k8s import k8s_job_executor

from assets.definitions import build_assets, build_definitions
from assets.pools import TRAINING_POOL
from featrix_pipeline.resources import SETTINGS_ENV
from featrix_pipeline.spec import DatasetSpec, load_spec
from featrix_pipeline.topology import Topology

# Every step: reading tables, profiling, joins, drift, scoring. Memory is the limit that matters
# (a pod over it is killed; CPU over the request is only throttled).
STEP_RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}
# A training step, besides its CPUs (torch's threads): what the demo warehouse's spaces need, with
# room to spare. Raise both for wider or longer tables.
TRAINING_MEMORY = {"requests": "4Gi", "limits": "8Gi"}


def torch_threads(environ=os.environ) -> int:
    """Threads torch trains with: ``FEATRIX_TORCH_THREADS`` when set (as the model settings read it), else 1."""
    name = SETTINGS_ENV["threads"]
    value = environ.get(name) or "1"
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number of threads (1 or more), not {value!r}")
    return int(value)


def training_resources(threads: int) -> dict:
    """Container resources of a training step: one CPU per torch thread, requested and capped."""
    return {"requests": {"cpu": str(threads), "memory": TRAINING_MEMORY["requests"]},
            "limits": {"cpu": str(threads), "memory": TRAINING_MEMORY["limits"]}}


def training_steps(spec: DatasetSpec) -> list[str]:
    """Op names of the spec's training steps: the assets in the training pool."""
    return sorted(a.op.name for a in build_assets(Topology.from_spec(spec)) if a.op.pool == TRAINING_POOL)


def k8s_executor(spec: DatasetSpec, threads: int | None = None) -> dg.ExecutorDefinition:
    """``k8s_job_executor`` with the per-step pod sizes above; namespace, image and service account
    come from the Helm chart's run launcher, which the executor inherits."""
    threads = torch_threads() if threads is None else threads
    training = {"container_config": {"resources": training_resources(threads)}}
    return k8s_job_executor.configured({
        "step_k8s_config": {"container_config": {"resources": STEP_RESOURCES}},
        "per_step_k8s_config": {step: training for step in training_steps(spec)},
    })


def build_k8s_definitions(spec: DatasetSpec | None = None) -> dg.Definitions:
    spec = load_spec() if spec is None else spec
    return build_definitions(spec, executor=k8s_executor(spec))


defs = build_k8s_definitions()
