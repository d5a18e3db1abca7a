"""``bash scripts/ui.sh`` for real: dagster dev (webserver + daemon) on a copy of the trained slice.
Its GraphQL API (what the UI reads) lists the refresh schedule, the sensors and both jobs; turning
the schedule on (every minute here) makes the daemon launch the refresh job on the next tick, which
scores the rows added to the warehouse and trains nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import duckdb
import pytest

from tests.assets.test_operations import _append_day3
from tests.conftest import REPO
from tests.ports import free_port

REPOSITORY = """{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name location { name }
  schedules { name cronSchedule scheduleState { status } } sensors { name sensorState { status } } jobs { name } } }
  ... on PythonError { message } } }"""
DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"
START = """mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) { __typename
  ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }"""
RUNS = """{ runsOrError(filter: {pipelineName: "refresh_and_score"}) { ... on Runs { results { runId status
  tags { key value } } } } }"""
STEPS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { stepStats { stepKey status } } } }"""
WAIT_S = 240  # how long a missing answer is waited for before the test fails (it decides nothing)



class UI:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"

    def query(self, text: str, **variables) -> dict:
        body = json.dumps({"query": text, "variables": variables}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            out = json.loads(r.read())
        assert "errors" not in out, out["errors"]
        return out["data"]

    def until(self, what: str, probe):
        """Poll ``probe`` until it returns something truthy (or fail after WAIT_S)."""
        deadline, last = time.monotonic() + WAIT_S, None
        while time.monotonic() < deadline:
            try:
                if got := probe():
                    return got
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                last = e
            time.sleep(2)
        pytest.fail(f"dagster dev: {what} not seen within {WAIT_S} s ({last})")


@pytest.fixture()
def ui(slice_home, tmp_path):
    home = slice_home.parent
    spec = slice_home.read_text().replace('cron: "0 6 * * *"', 'cron: "* * * * *"')
    if "* * * * *" not in spec:  # the demo spec declares no schedule: every minute, for the test
        spec += '\nschedule:\n  cron: "* * * * *"\n'
    slice_home.write_text(spec)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    known, new = _append_day3(home)  # rows added before dagster dev opens the warehouse (no lock race)
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "FEATRIX_SPEC": str(slice_home),
           "FEATRIX_HOME": str(home)}
    log = open(tmp_path / "dagster_dev.log", "w")
    proc = subprocess.Popen(["env", "--default-signal=INT", "bash", "scripts/ui.sh", "-h", "127.0.0.1", "-p", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield UI(port), home, proc, len(known) + len(new)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_ui_shows_the_schedule_sensors_and_jobs_and_the_schedule_scores_new_rows(ui):
    ui, home, proc, expected = ui

    def loaded():
        data = ui.query(REPOSITORY)["repositoriesOrError"]
        assert data["__typename"] == "RepositoryConnection", data
        return data["nodes"]
    [repo] = ui.until("the code location", loaded)
    schedules = {s["name"]: s for s in repo["schedules"]}
    assert schedules["refresh_schedule"]["scheduleState"]["status"] == "STOPPED"  # off until turned on
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert sensors == {"drift_sensor": "RUNNING", "schema_sensor": "RUNNING", "model_automation": "RUNNING",
                       "abandoned_runs": "RUNNING"}
    assert {"refresh_and_score", "retrain"} <= {j["name"] for j in repo["jobs"]}

    def daemons():
        status = {d["daemonType"]: d["healthy"] for d in
                  ui.query(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"] if d["required"]}
        return status if status.get("SCHEDULER") and status.get("SENSOR") else None
    ui.until("a healthy scheduler and sensor daemon", daemons)

    started = ui.query(START, s={"repositoryLocationName": repo["location"]["name"], "repositoryName": repo["name"],
                                 "scheduleName": "refresh_schedule"})["startSchedule"]
    assert started["scheduleState"]["status"] == "RUNNING", started

    def finished():
        runs = ui.query(RUNS)["runsOrError"]["results"]
        done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        return done[-1] if done else None
    run = ui.until("a finished refresh run launched by the schedule", finished)
    assert {t["key"]: t["value"] for t in run["tags"]}.get("dagster/schedule_name") == "refresh_schedule"
    assert run["status"] == "SUCCESS", run
    steps = {s["stepKey"] for s in ui.query(STEPS, id=run["runId"])["runOrError"]["stepStats"]}
    assert "arr_delay15__predictions" in steps
    assert not {s for s in steps if s.endswith(("embedding_space", "relational_space", "__predictor"))}
    con = duckdb.connect(str(home / "wh.duckdb"), read_only=True)
    try:
        scored = con.execute("SELECT count(*) FROM arr_delay15_predictions").fetchone()[0]
    finally:
        con.close()
    assert scored == expected
    assert proc.poll() is None  # dagster dev still serving
