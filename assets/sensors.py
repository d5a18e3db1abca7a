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


def drift_retrain(topology: Topology, table: str, metadata: dict) -> tuple[tuple, str] | None:
    """What a drift measurement asks to retrain — the space and all built on it, or only the predictors
    whose target shifted — and why; None below the thresholds."""
    value = {k: getattr(v, "value", v) for k, v in metadata.items()}
    if value.get("retrain_space"):
        return topology.built_on(table), f"{table}: columns {value.get('drifted_columns') or []} drifted"
    if value.get("retrain_targets"):
        names = set(value["retrain_targets"])
        keys = tuple(k for t in topology.targets if t.name in names
                     for k in (t.key("predictor"), t.key("predictions"), t.table.key("drift")))
        return keys, f"{table}: targets {sorted(names)} shifted"
    return None


def _snapshot_schema(instance: dg.DagsterInstance, raw_key) -> dict | None:
    """The warehouse schema recorded by a table's last ``raw`` snapshot (None: never snapshotted)."""
    event = instance.get_latest_materialization_event(dg.AssetKey(list(raw_key)))
    entry = event.asset_materialization.metadata.get(SCHEMA) if event and event.asset_materialization else None
    return entry.value if entry is not None else None


def build_sensors(topology: Topology, jobs: dict) -> list:
    drift_keys = _keys(p.key("drift") for p in topology.tables.values() if p.has_space)

    @dg.sensor(job=jobs[RETRAIN], name="drift_sensor", minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="After each drift measurement: when a table's rows crossed the dataset spec's drift threshold, "
                           "retrain its space and everything built on it.")
    def drift_sensor(context: dg.SensorEvaluationContext):
        seen = json.loads(context.cursor) if context.cursor else {}  # drift asset → last storage id handled
        keys, reasons, tables = [], [], []
        for key in drift_keys:
            records = context.instance.fetch_materializations(key, limit=1).records
            if not records or records[0].storage_id <= seen.get(key.to_user_string(), -1):
                continue
            record = records[0]
            seen[key.to_user_string()] = record.storage_id
            asked = drift_retrain(topology, key.path[0], record.asset_materialization.metadata)
            if asked is not None:
                context.log.info(f"{asked[1]}: retrain requested")
                keys += asked[0]
                reasons.append(asked[1])
                tables.append(key.path[0])
        cursor = json.dumps(seen, sort_keys=True)
        if not keys:  # one run for everything a tick asks for: overlapping retrains would race
            return dg.SensorResult(cursor=cursor, skip_reason="no new drift measurement crossed a retrain threshold")
        request = dg.RunRequest(run_key=f"drift-{digest(cursor)}", asset_selection=_keys(dict.fromkeys(keys)),
                                tags={"featrix/trigger": "drift", "featrix/tables": ",".join(tables),
                                      "featrix/reason": "; ".join(reasons)[:1000]})
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    @dg.sensor(job=jobs[RETRAIN], name="schema_sensor", minimum_interval_seconds=300,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Compares each table's columns and types in the warehouse with the schema it last "
                           "acted on (first: the last snapshot's); an added, removed or retyped column requests a "
                           "retrain of that table's assets.")
    def schema_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        # the baseline is the sensor's own (its cursor), so a refresh run that snapshots the new schema
        # before this tick does not hide the change
        known = json.loads(context.cursor) if context.cursor else {}
        wh, changes, problems = warehouse.get(), [], []
        for name, plan in topology.tables.items():
            before = known.get(name) or _snapshot_schema(context.instance, plan.key("raw"))
            try:
                after = wh.sql_schema(plan.spec.source)
            except WarehouseError as e:  # e.g. a writer holds the file: try again next tick
                problems.append(f"{name}: {e}")
                continue
            known[name] = after
            change = schema_changes(name, before, after) if before is not None else None
            if change:
                context.log.info(change.message())
                changes.append(change)
        cursor = json.dumps(known, sort_keys=True)
        if not changes:
            return dg.SensorResult(cursor=cursor, skip_reason="no table's columns changed"
                                   + (f" ({'; '.join(problems)})" if problems else ""))
        keys = [k for c in changes for k in topology.affected_by_schema(c.table)]
        request = dg.RunRequest(run_key=f"schema-{digest([c.to_dict() for c in changes])}-{digest(cursor)}",
                                asset_selection=_keys(dict.fromkeys(keys)),
                                tags={"featrix/trigger": "schema", "featrix/tables": ",".join(c.table for c in changes),
                                      "featrix/reason": " ".join(c.message() for c in changes)[:1000]})
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return [drift_sensor, schema_sensor]
