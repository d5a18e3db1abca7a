"""The code location for Celery: the project's definitions with every step sent to a Celery worker.

``dagster_celery.celery_executor`` puts each step on a broker queue; any worker that listens on it
(``dagster-celery worker start -A dagster_celery.app``) loads this module, runs the step and
writes its events to the shared Dagster instance. Workers on several machines therefore need the
same code, the same FEATRIX_SPEC, the same FEATRIX_HOME (a shared filesystem: the artifact store
lives there) and a warehouse they all reach (PostgreSQL, not a local DuckDB file): deploy/README.md.

Broker and result backend are named by environment variable, never written here: the run config
keeps ``{"env": "CELERY_BROKER_URL"}``, and the value, which may carry a password, is read by the
run when it starts, so it never shows in the UI or the run's stored config. Celery itself reads
the same two variables on the workers, so both sides always point at the same broker.

Training steps are in the ``featrix_training`` pool (assets/pools.py): the instance's pool limit
caps how many train at once across all workers; each worker's ``--concurrency`` caps how many steps
share its machine.
"""

from __future__ import annotations

import dagster as dg
from dagster_celery import celery_executor

from assets.definitions import build_definitions
from featrix_pipeline.spec import DatasetSpec, load_spec

BROKER_ENV, BACKEND_ENV = "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"


def celery_executor_for(broker_env: str = BROKER_ENV, backend_env: str = BACKEND_ENV) -> dg.ExecutorDefinition:
    """``celery_executor`` reading its broker and result backend from the environment at run start.
    ``include`` stays empty: a worker imports the job's own module (this one) from the step it is
    given, so it needs no module list of its own."""
    return celery_executor.configured({"broker": {"env": broker_env}, "backend": {"env": backend_env}})


def build_celery_definitions(spec: DatasetSpec | None = None) -> dg.Definitions:
    return build_definitions(load_spec() if spec is None else spec, executor=celery_executor_for())


defs = build_celery_definitions()
