"""The Dagster code location: every asset, check and resource built from one dataset spec.

The spec comes from $FEATRIX_SPEC (default: schemas/datasets/nycflights13.yaml), so the same code
runs on any warehouse and spec without code changes. Its topology — which tables get which model,
and what each model reads — is computed once here and handed to every asset factory.
"""

from __future__ import annotations

import os

import dagster as dg

from assets.drift import build_drift_assets
from assets.jobs import build_jobs
from assets.joins import build_join_assets
from assets.predictors import build_predictor_assets
from assets.relational import build_relational_assets
from assets.automation import automation_sensor
from assets.schedules import build_schedules
from assets.recovery import abandoned_run_sensor
from assets.sensors import build_sensors
from assets.spaces import build_space_assets
from assets.tables import build_table_assets
from featrix_pipeline.resources import build_model_settings, build_warehouse
from featrix_pipeline.spec import DatasetSpec, load_spec
from featrix_pipeline.store import ParquetJsonIOManager, default_store_dir, reports_dir
from featrix_pipeline.topology import Topology


def build_assets(topology: Topology) -> list:
    store, reports = default_store_dir(topology.spec.name), reports_dir(topology.spec.name)
    return (build_table_assets(topology, store, reports) + build_join_assets(topology, store, reports)
            + build_space_assets(topology, store) + build_relational_assets(topology, store)
            + build_predictor_assets(topology, store) + build_drift_assets(topology, reports))


def build_resources(spec: DatasetSpec) -> dict:
    return {"io_manager": ParquetJsonIOManager(base_dir=str(default_store_dir(spec.name))),
            "warehouse": build_warehouse(spec),
            "model_settings": build_model_settings()}


STEP_PROCESSES = "FEATRIX_STEP_PROCESSES"


def local_executor(environ: dict | None = None) -> dg.ExecutorDefinition:
    """Steps in this process, one at a time, unless ``$FEATRIX_STEP_PROCESSES`` asks for N > 1: then N
    steps at a time, each in a process forked from a server that imported this code location once
    (``forkserver``: ~4 s of start-up per step here, where a fresh interpreter paid ~20 s). The
    training steps' priorities (``assets.pools``) decide which ready step goes first; results are the
    same bytes either way (each fit seeds itself), only the wall clock changes."""
    raw = (os.environ if environ is None else environ).get(STEP_PROCESSES, "").strip()
    if not raw:
        return dg.in_process_executor
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{STEP_PROCESSES}={raw!r}: give a whole number of steps to run at once (1: in this "
                         "process; 2 on a 2-core machine) or leave it unset.")
    if int(raw) == 1:
        return dg.in_process_executor
    return dg.multiprocess_executor.configured({"max_concurrent": int(raw), "start_method": {"forkserver": {}}},
                                               name="featrix_multiprocess")


def build_definitions(spec: DatasetSpec, executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """Assets, jobs, schedule and resources of one spec. Steps run as ``local_executor`` says (in one
    process by default); ``executor`` replaces it for deployments that spread steps over machines
    (deploy/: Kubernetes pods, Celery workers)."""
    topology = Topology.from_spec(spec)
    jobs = build_jobs(topology)
    return dg.Definitions(assets=build_assets(topology), jobs=list(jobs.values()),
                          schedules=build_schedules(topology, jobs),
                          sensors=[*build_sensors(topology, jobs), automation_sensor(), abandoned_run_sensor()],
                          resources=build_resources(spec), executor=executor or local_executor())


defs = build_definitions(load_spec())
