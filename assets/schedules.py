"""The warehouse-connected refresh on the dataset spec's schedule (off until turned on in the UI)."""

from __future__ import annotations

import dagster as dg

from assets.jobs import REFRESH
from featrix_pipeline.spec import SpecError
from featrix_pipeline.topology import Topology


def build_schedules(topology: Topology, jobs: dict) -> list[dg.ScheduleDefinition]:
    spec = topology.spec
    try:
        schedule = dg.ScheduleDefinition(
            name="refresh_schedule", cron_schedule=spec.schedule_cron, job=jobs[REFRESH],
            execution_timezone=spec.schedule_timezone, default_status=dg.DefaultScheduleStatus.STOPPED,
            description=f"Runs {REFRESH} on '{spec.schedule_cron}' ({spec.schedule_timezone}): new rows are scored and "
                        "written back; nothing is retrained.")
    except Exception as e:  # noqa: BLE001 - Dagster's own message names the cron problem
        raise SpecError(f"{spec.path}: field 'schedule.cron' {spec.schedule_cron!r}: {str(e).splitlines()[0]}") from None
    return [schedule]
