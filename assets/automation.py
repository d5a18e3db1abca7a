"""When a model asset runs again by itself: when a space it is built on was retrained, or its own code
version (model code + its part of the spec) changed — never while a dependency is missing or running,
and only when every blocking check of its dependencies passed (a failed join check stops retraining
across runs too). New rows alone never retrain anything: the refresh job scores them."""

from __future__ import annotations

import dagster as dg

from assets.jobs import QUEUE_TAG

A = dg.AutomationCondition


def when_rebuilt(deps: list[tuple[str, ...]] = ()) -> dg.AutomationCondition:
    """Run when one of ``deps`` (asset keys) was updated or this asset's code version changed."""
    trigger = A.code_version_changed()
    if deps:
        trigger = A.any_deps_updated().allow(dg.AssetSelection.assets(*[dg.AssetKey(list(k)) for k in deps])) | trigger
    return (trigger.since_last_handled() & ~A.any_deps_missing() & ~A.any_deps_in_progress() & ~A.in_progress()
            & A.all_deps_blocking_checks_passed()).with_label("rebuilt upstream or new code, checks passed")


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "model_automation", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
        run_tags=QUEUE_TAG,
        description="Runs model assets again when a space they are built on was retrained or their code changed, "
                    "once every blocking check upstream passed.")
