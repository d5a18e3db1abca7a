"""Bad input: processes and locks — a reader or writer that meets another process's lock
waits and then gives up with one clear message; a run whose process was killed does not hold the
pipeline's run queue forever. Each test names one kind of fault and the outcome it must get."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from featrix_pipeline.warehouse import Warehouse, WarehouseError



def _hold_for_writing(db, seconds: float):
    import subprocess
    import sys
    import time

    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(float(sys.argv[2]))", str(db), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    time.sleep(0.2)
    return holder


def test_a_read_while_another_process_writes_waits_then_reads(tmp_path):
    """Bad input: a read while another process holds DuckDB's write lock. Outcome: the read waits
    like a write does and returns the rows once the writer is done."""
    db = tmp_path / "w.duckdb"
    wh = Warehouse(f"duckdb:///{db}")
    wh.write_table("t", pd.DataFrame({"a": [1, 2]}))
    holder = _hold_for_writing(db, 1.5)
    assert wh.read_table("t", order_by=["a"])["a"].tolist() == [1, 2]
    holder.wait()


def test_a_read_that_never_gets_the_lock_says_who_holds_it(tmp_path, monkeypatch):
    """Bad input: the write lock is held for longer than the read waits. Outcome: one clear error
    naming the file and what to do, the same as a write that gives up."""
    db = tmp_path / "w.duckdb"
    wh = Warehouse(f"duckdb:///{db}")
    wh.write_table("t", pd.DataFrame({"a": [1]}))
    monkeypatch.setattr("featrix_pipeline.warehouse.LOCK_ATTEMPTS", 2)
    monkeypatch.setattr("featrix_pipeline.warehouse.LOCK_WAIT_S", 0.1)
    monkeypatch.setattr(Warehouse._connect, "__defaults__", (2, 0.1))
    holder = _hold_for_writing(db, 5)
    try:
        with pytest.raises(WarehouseError, match=f"Cannot open {db} for reading: .*Another process holds it"):
            wh.read_table("t")
        with pytest.raises(WarehouseError, match=f"Cannot open {db} for writing: .*Another process holds it"):
            wh.write_table("u", pd.DataFrame({"a": [1]}))
    finally:
        holder.kill()
        holder.wait()


KILLED_RUN = """
import os, sys, time
import dagster as dg

@dg.asset
def slow():
    print("running", flush=True)
    time.sleep(60)

dg.materialize([slow], instance=dg.DagsterInstance.get(), tags={"featrix/queue": "pipeline"})
"""


def test_a_killed_run_is_marked_failed_and_frees_the_queue(tmp_path, monkeypatch):
    """Fault: `kill -9` of a process in the middle of a Dagster run. Outcome: the run, left STARTED,
    is found by the abandoned-runs sensor and marked failed with a message naming the dead process
    and what the next run does; a live run is left alone."""
    import signal
    import subprocess
    import sys

    import dagster as dg

    from assets.recovery import abandoned_run_sensor, fail_abandoned

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    worker = subprocess.Popen([sys.executable, "-c", KILLED_RUN], env=env, stdout=subprocess.PIPE, text=True)
    assert worker.stdout.readline().strip() == "running"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED
        assert fail_abandoned(instance, quiet_s=0) == []  # alive: left alone
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # what kill -9 leaves
        assert fail_abandoned(instance, quiet_s=3600) == []  # it logged moments ago: not yet
        sensor = abandoned_run_sensor()
        monkeypatch.setattr("assets.recovery.QUIET_S", 0)
        monkeypatch.setattr("assets.recovery.fail_abandoned.__defaults__", (0,))
        result = sensor(dg.build_sensor_context(instance=instance))
        assert f"run {run.run_id}" in result.skip_message and "marked failed" in result.skip_message
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        failure = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        text = failure[0].event_log_entry.dagster_event.message
        assert f"pid {worker.pid}" in text and "run queue" in text and "next run" in text


def test_a_file_that_is_no_duckdb_database_is_named_as_such(tmp_path):
    """Bad input: the warehouse URL points at a file that is not a DuckDB database. Outcome: one
    error naming the file and what to do — not the lock message, and no wait."""
    db = tmp_path / "w.duckdb"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(WarehouseError) as e:
        Warehouse(f"duckdb:///{db}").read_table("t")
    assert str(db) in str(e.value) and "Another process" not in str(e.value) and "seed the demo" in str(e.value)
