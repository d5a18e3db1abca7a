"""Sensors that say when to retrain: drift measured by the refresh runs, and schema changes in the
warehouse. Both request the retrain job for exactly the affected assets; neither does torch work."""

from __future__ import annotations

import json

import dagster as dg

from assets.jobs import RETRAIN
from featrix_pipeline.fingerprint import digest
from featrix_pipeline.resources import WarehouseResource
from featrix_pipeline.schema import schema_changes
from featrix_pipeline.topology import Topology
from featrix_pipeline.warehouse import WarehouseError

SCHEMA = "warehouse_schema"  # the raw asset's metadata entry: column → warehouse type at the last snapshot


def _keys(keys) -> list[dg.AssetKey]:
    return [dg.AssetKey(list(k)) for k in keys]


def drift_request(topology: Topology, table: str, metadata: dict, storage_id: int) -> dg.RunRequest | None:
    """The retrain a drift measurement asks for: the space and all built on it, or only the predictors
    whose target shifted; None below the thresholds."""
    value = {k: getattr(v, "value", v) for k, v in metadata.items()}
    if value.get("retrain_space"):
        keys, why = topology.built_on(table), f"columns {value.get('drifted_columns') or []} drifted"
    elif value.get("retrain_targets"):
        names = set(value["retrain_targets"])
        keys = [k for t in topology.targets if t.name in names for k in (t.key("predictor"), t.key("predictions"))]
        why = f"targets {sorted(names)} shifted"
    else:
        return None
    return dg.RunRequest(run_key=f"drift-{table}-{storage_id}", asset_selection=_keys(keys),
                         tags={"featrix/trigger": "drift", "featrix/table": table, "featrix/reason": why[:200]})


def build_sensors(topology: Topology, jobs: dict) -> list:
    drift_keys = _keys(p.key("drift") for p in topology.tables.values() if p.has_space)

    @dg.sensor(job=jobs[RETRAIN], name="drift_sensor", minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="After each drift measurement: when a table's rows crossed the dataset spec's drift threshold, "
                           "retrain its space and everything built on it.")
    def drift_sensor(context: dg.SensorEvaluationContext):
        seen = json.loads(context.cursor) if context.cursor else {}  # drift asset → last storage id handled
        requests = []
        for key in drift_keys:
            records = context.instance.fetch_materializations(key, limit=1).records
            if not records or records[0].storage_id <= seen.get(key.to_user_string(), -1):
                continue
            record = records[0]
            seen[key.to_user_string()] = record.storage_id
            request = drift_request(topology, key.path[0], record.asset_materialization.metadata, record.storage_id)
            if request is not None:
                context.log.info(f"{key.to_user_string()}: {request.tags['featrix/reason']}: retrain requested")
                requests.append(request)
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True),
                               skip_reason=None if requests else "no new drift measurement crossed a retrain threshold")

    @dg.sensor(job=jobs[RETRAIN], name="schema_sensor", minimum_interval_seconds=300,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Compares each table's columns and types in the warehouse with its last snapshot; an "
                           "added, removed or retyped column requests a retrain of that table's assets.")
    def schema_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        wh, requests, seen = warehouse.get(), [], []
        for name, plan in topology.tables.items():
            event = context.instance.get_latest_materialization_event(dg.AssetKey(list(plan.key("raw"))))
            before = event.asset_materialization.metadata.get(SCHEMA) if event and event.asset_materialization else None
            if before is None:
                continue
            try:
                after = wh.sql_schema(plan.spec.source)
            except WarehouseError as e:  # e.g. a writer holds the file: try again next tick
                seen.append(f"{name}: {e}")
                continue
            change = schema_changes(name, before.value, after)
            if change:
                context.log.info(change.message())
                requests.append(dg.RunRequest(run_key=f"schema-{name}-{digest(after)}",
                                              asset_selection=_keys(topology.affected_by_schema(name)),
                                              tags={"featrix/trigger": "schema", "featrix/table": name,
                                                    "featrix/reason": change.message()[:200]}))
        return requests or dg.SkipReason("no table's columns changed" + (f" ({'; '.join(seen)})" if seen else ""))

    return [drift_sensor, schema_sensor]
