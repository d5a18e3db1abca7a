"""Runs whose process was killed (``kill -9``, an out-of-memory kill, a power cut) stay STARTED in
Dagster's run storage for ever: nothing is left to record their end. A pipeline run that stays
STARTED also holds the one slot of the pipeline's run queue (``featrix/queue``), so no later
refresh or retrain would ever start. The ``abandoned_runs`` sensor finds such runs — started on
this machine, their worker process gone, nothing logged for a while — and marks them failed with
a message that says what happened and what the next run does about it.

What a killed run leaves, and how the next run recovers (also in docs/architecture.md, "When a run is killed"):
- the warehouse: every table it was replacing is the previous one, whole (writes are all or nothing);
- trained models: the unfinished ``.training-…`` folder of the killed process, never read, removed by
  the next run of the same store; the serving version stays the serving one;
- the run: STARTED until this sensor marks it failed; the next run trains from the start what the
  killed run had not published (finished steps are reused by their content keys).
"""

from __future__ import annotations

import time

import dagster as dg

from assets.jobs import QUEUE_TAG
from featrix_model.io import process_alive

QUIET_S = 120  # a run is abandoned only when its process is gone AND nothing was logged for this long
IN_PROGRESS = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process that ran the run: the pid recorded with its RUN_START event (a run's events carry
    the pid of the process that logged them)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    event = records[0].event_log_entry.dagster_event if records else None
    return getattr(event, "pid", None)


def machine_local(instance: dg.DagsterInstance) -> bool:
    """Whether the instance's runs all run on this machine: its run storage is the local SQLite file
    (a shared database, e.g. PostgreSQL, may hold runs of other machines, whose pids mean nothing here)."""
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

    return isinstance(instance.run_storage, SqliteRunStorage)


def abandoned(instance: dg.DagsterInstance, quiet_s: float = QUIET_S) -> list[tuple[dg.DagsterRun, int]]:
    """In-progress runs whose worker process no longer exists on this machine and that have logged
    nothing for ``quiet_s`` seconds. Only for a machine-local instance (``machine_local``)."""
    if not machine_local(instance):
        return []
    out = []
    now = time.time()  # operations only: when to give up on a dead run, never what a run computes
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        pid = _worker_pid(instance, run.run_id)
        if pid is None or process_alive(pid):
            continue
        last = instance.get_records_for_run(run.run_id, limit=1, ascending=False).records
        if last and now - last[0].event_log_entry.timestamp < quiet_s:
            continue
        out.append((run, pid))
    return out


def fail_abandoned(instance: dg.DagsterInstance, quiet_s: float = QUIET_S) -> list[str]:
    """Mark every abandoned run failed; returns one line per run."""
    lines = []
    for run, pid in abandoned(instance, quiet_s):
        queued = " and frees the pipeline's run queue" if set(QUEUE_TAG) & set(run.tags) else ""
        message = (f"The process that ran this run (pid {pid}) is gone — killed or crashed — and the run logged "
                   f"nothing for {quiet_s:.0f}s: marked failed{queued}. What it had not finished was not written "
                   "(warehouse tables and models are replaced whole or not at all); the next run redoes it.")
        instance.report_run_failed(run, message)
        lines.append(f"run {run.run_id} ({run.job_name}, pid {pid}): marked failed")
    return lines


def abandoned_run_sensor() -> dg.SensorDefinition:
    @dg.sensor(name="abandoned_runs", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Marks failed the runs whose process was killed (they would stay STARTED and hold the "
                           "pipeline's run queue for ever), saying what the killed run left and what the next "
                           "run redoes.")
    def abandoned_runs(context: dg.SensorEvaluationContext):
        if not machine_local(context.instance):
            return dg.SkipReason("the run storage is shared by other machines, so a run's process cannot be checked "
                                 "from here: use Dagster's run monitoring (run_monitoring in dagster.yaml, and the "
                                 "dagster/max_runtime tag) to end runs whose process died")
        lines = fail_abandoned(context.instance)
        for line in lines:
            context.log.warning(line)
        return dg.SkipReason("; ".join(lines) if lines else "no abandoned run")

    return abandoned_runs
