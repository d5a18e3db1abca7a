from __future__ import annotations

import pandas as pd
import pytest

from featrix_pipeline.spec import load_spec
from featrix_pipeline.targets import target_values
from featrix_pipeline.warehouse import Warehouse, WarehouseError


def test_duckdb_snapshot_is_ordered_and_typed(small_warehouse):
    spec = load_spec(small_warehouse)
    wh = Warehouse(spec.warehouse_url)
    w = wh.read_table("weather", order_by=["origin", "time_hour"])
    assert pd.api.types.is_datetime64_any_dtype(w["time_hour"])
    assert list(w[["origin", "time_hour"]].itertuples(index=False)) == sorted(w[["origin", "time_hour"]].itertuples(index=False))
    assert wh.read_table("planes", order_by=["tailnum"], limit=7).shape[0] == 7


def test_identifiers_are_quoted_not_interpolated(tmp_path):
    wh = Warehouse(f"duckdb:///{tmp_path / 'q.duckdb'}")
    wh.write_table("odd table", pd.DataFrame({"select": [1, 2], "from x": ["a", "b"]}))
    df = wh.read_table("odd table", order_by=["select"], columns=["from x", "select"])
    assert df.to_dict("list") == {"from x": ["a", "b"], "select": [1, 2]}


def test_folder_of_files_reads_csv_and_parquet(tmp_path, nyc_frames):
    folder = tmp_path / "files"
    folder.mkdir()
    nyc_frames["airlines"].to_csv(folder / "airlines.csv", index=False)
    nyc_frames["planes"].to_parquet(folder / "planes.parquet")
    wh = Warehouse(f"files:///{folder}")
    assert wh.read_table("airlines", order_by=["carrier"]).shape == (16, 2)
    assert wh.columns("planes") == list(nyc_frames["planes"].columns)
    with pytest.raises(WarehouseError, match="No file for table 'weather'"):
        wh.read_table("weather")


def test_missing_warehouse_says_how_to_seed(tmp_path):
    with pytest.raises(WarehouseError, match="featrix_pipeline.demo"):
        Warehouse(f"duckdb:///{tmp_path / 'nope.duckdb'}").read_table("flights")


def test_expression_target_keeps_every_row(nyc_frames):
    spec = load_spec()
    flights = nyc_frames["flights"]
    y = target_values(flights, next(t for t in spec.targets if t.name == "arr_delay15"))
    assert len(y) == len(flights)
    assert y.isna().sum() == flights["arr_delay"].isna().sum()
    assert (y.dropna() == (flights["arr_delay"].dropna() > 15)).all()
    mfr = target_values(nyc_frames["planes"], next(t for t in spec.targets if t.name == "plane_manufacturer"))
    assert set(mfr) <= {"BOEING", "AIRBUS", "EMBRAER", "BOMBARDIER", "MCDONNELL_DOUGLAS", "OTHER"}
    assert (mfr[nyc_frames["planes"]["manufacturer"] == "CANADAIR"] == "BOMBARDIER").all()


def test_write_waits_for_a_reader_in_another_process(tmp_path):
    import subprocess
    import sys
    import time

    db = tmp_path / "w.duckdb"
    wh = Warehouse(f"duckdb:///{db}")
    wh.write_table("t", pd.DataFrame({"a": [1]}))
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import duckdb, time; c = duckdb.connect({str(db)!r}, read_only=True); time.sleep(2)"])
    time.sleep(1.0)  # the other process now holds the file
    wh.write_table("scores", pd.DataFrame({"a": [1, 2]}))  # waits instead of failing
    holder.wait()
    assert wh.read_table("scores", order_by=["a"])["a"].tolist() == [1, 2]


# ------------------------------------------------------------------ all-or-nothing writes

# A writer in its own process. It replaces table `preds` with 100,000 new rows and stops for good
# (the test kills it there) at `stage`: "during" — part of the new rows written (DuckDB: inside the
# CREATE, which pulls the frame batch by batch; files: inside the Parquet file; SQLAlchemy: between
# INSERT chunks), or "commit" — every row written, just before the write is made visible (DuckDB:
# the COMMIT; files: the os.replace; SQLAlchemy: the commit of the transaction that renames).
# A writer that never reaches `stage` exits, and the test fails.
WRITER = r'''
import os, sys, time
import numpy as np, pandas as pd
from featrix_pipeline.warehouse import Warehouse

url, stage = sys.argv[1], sys.argv[2]


def reached(name):
    print(name, flush=True)
    if name == stage:
        time.sleep(600)


def in_batches(table):
    for i, batch in enumerate(table.to_batches(max_chunksize=10_000)):
        if i == 3:
            reached("during")
        yield batch


wh = Warehouse(url)
frame = pd.DataFrame({"id": np.arange(100_000), "v": np.full(100_000, "new")})
if wh.kind == "duckdb":
    import pyarrow as pa

    connect = Warehouse._connect_for_write

    class Watched:
        def __init__(self, con):
            self._con = con

        def __getattr__(self, attr):
            return getattr(self._con, attr)

        def register(self, name, df):
            table = pa.Table.from_pandas(df, preserve_index=False)
            return self._con.register(name, pa.RecordBatchReader.from_batches(table.schema, in_batches(table)))

        def execute(self, sql, *args):
            if sql.lstrip().upper().startswith("COMMIT"):
                reached("commit")
            return self._con.execute(sql, *args)

        def commit(self):
            reached("commit")
            return self._con.commit()

    Warehouse._connect_for_write = lambda self, *a, **k: Watched(connect(self, *a, **k))
elif wh.kind == "files":
    import pyarrow.parquet as pq

    def write_table(table, where, **kwargs):
        with pq.ParquetWriter(where, table.schema) as writer:
            for batch in in_batches(table):
                writer.write_batch(batch)

    pq.write_table = write_table
    replace = os.replace

    def watched_replace(src, dst):
        reached("commit")
        return replace(src, dst)

    os.replace = watched_replace
else:
    import sqlalchemy

    to_sql = pd.DataFrame.to_sql
    pd.DataFrame.to_sql = lambda self, *a, **k: to_sql(self, *a, **{**k, "chunksize": 10_000})
    seen = {"inserts": 0, "rename": False}

    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "before_cursor_execute")
    def before(conn, cursor, statement, parameters, context, executemany):
        text = statement.lstrip().upper()
        seen["rename"] = seen["rename"] or "RENAME" in text
        if text.startswith("INSERT"):
            seen["inserts"] += 1
            if seen["inserts"] == 4:
                reached("during")

    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "commit")
    def commit(conn):
        if seen["rename"]:
            reached("commit")

wh.write_table("preds", frame)
print("finished", flush=True)
'''

PREVIOUS = pd.DataFrame({"id": list(range(1000)), "v": ["old"] * 1000})


def urls(tmp_path) -> dict[str, str]:
    return {"duckdb": f"duckdb:///{tmp_path / 'w.duckdb'}", "files": f"files:///{tmp_path}",
            "sqlite": f"sqlite:///{tmp_path / 'w.sqlite'}"}


def kill_writer_at(url: str, stage: str) -> None:
    """Start WRITER, wait until it says it reached ``stage`` (it then sleeps), SIGKILL it."""
    import queue
    import signal
    import subprocess
    import sys
    import threading

    from tests.conftest import REPO

    proc = subprocess.Popen([sys.executable, "-c", WRITER, url, stage], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in proc.stdout] + [lines.put(None)],
                     daemon=True).start()
    seen = []
    try:
        while stage not in seen:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                line = None
            if line is None or line == "finished":
                proc.kill()
                proc.wait()
                pytest.fail(f"the writer never reached '{stage}' (printed {seen + [line]}): {proc.stderr.read()[-3000:]}")
            seen.append(line)
        assert proc.poll() is None, "the writer must still be inside the write when it is killed"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize("stage", ["during", "commit"])
@pytest.mark.parametrize("kind", ["duckdb", "files", "sqlite"])
def test_a_writer_killed_inside_the_write_leaves_the_previous_table(tmp_path, kind, stage):
    wh = Warehouse(urls(tmp_path)[kind])
    wh.write_table("preds", PREVIOUS)
    kill_writer_at(wh.url, stage)
    after = wh.read_table("preds", order_by=["id"])
    assert after.shape == PREVIOUS.shape
    assert after["id"].tolist() == PREVIOUS["id"].tolist() and after["v"].tolist() == PREVIOUS["v"].tolist()
    if kind == "files":  # the dead writer's unfinished file is left beside the table, never read as it
        assert [p.name for p in tmp_path.glob("preds.parquet*")] != ["preds.parquet"]
    wh.write_table("preds", PREVIOUS.assign(v="next"))  # nothing is wedged: the next write goes through
    assert wh.read_table("preds", order_by=["id"])["v"].tolist() == ["next"] * 1000


def test_a_failed_file_write_keeps_the_previous_file_and_leaves_no_partial_one(tmp_path, monkeypatch):
    import os

    wh = Warehouse(f"files:///{tmp_path}")
    wh.write_table("preds", PREVIOUS)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        wh.write_table("preds", PREVIOUS.assign(v="new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.parquet"]
    assert wh.read_table("preds")["v"].tolist() == ["old"] * 1000


def test_a_failed_sqlalchemy_write_drops_its_temporary_table(tmp_path):
    import sqlalchemy

    wh = Warehouse(f"sqlite:///{tmp_path / 'w.sqlite'}")
    wh.write_table("preds", PREVIOUS)
    bad = PREVIOUS.assign(v=[{"not": "storable"}] * 1000)  # sqlite refuses the rows after the table exists
    with pytest.raises(Exception):
        wh.write_table("preds", bad)
    engine = sqlalchemy.create_engine(wh.url)
    try:
        assert sqlalchemy.inspect(engine).get_table_names() == ["preds"]
    finally:
        engine.dispose()
    assert wh.read_table("preds")["v"].tolist() == ["old"] * 1000


def test_a_sqlalchemy_write_replaces_the_table_in_its_schema(tmp_path):
    wh = Warehouse(f"sqlite:///{tmp_path / 'w.sqlite'}", schema="main")
    wh.write_table("odd preds", PREVIOUS)
    wh.write_table("odd preds", PREVIOUS.iloc[:3])
    assert wh.read_table("odd preds", order_by=["id"])["id"].tolist() == [0, 1, 2]


# ------------------------------------------------------------------ read_optional, sql_schema


@pytest.mark.parametrize("kind", ["duckdb", "files", "sqlite"])
def test_read_optional_is_none_for_a_missing_table(tmp_path, kind):
    wh = Warehouse(urls(tmp_path)[kind])
    wh.write_table("other", PREVIOUS.iloc[:2])  # the warehouse exists, the table does not
    assert wh.read_optional("preds") is None
    wh.write_table("preds", PREVIOUS)
    got = wh.read_optional("preds")
    assert got.sort_values("id")["id"].tolist() == PREVIOUS["id"].tolist()
    assert list(got.columns) == ["id", "v"]


def test_read_optional_in_a_duckdb_schema(tmp_path):
    import duckdb

    db = tmp_path / "s.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA scoring")
    con.execute("CREATE TABLE main.preds AS SELECT 1 AS id")
    con.close()
    wh = Warehouse(f"duckdb:///{db}", schema="scoring")
    assert wh.read_optional("preds") is None  # main.preds is not scoring.preds
    wh.write_table("preds", PREVIOUS)
    assert len(wh.read_optional("preds")) == 1000
    assert Warehouse(f"duckdb:///{db}").read_optional("preds")["id"].tolist() == [1]


def test_sql_schema_of_a_duckdb_table(tmp_path):
    wh = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    frame = pd.DataFrame({"time_hour": pd.to_datetime(["2013-01-01 05:00"]), "origin": ["JFK"],
                          "visib": [10.0], "flights": [3], "late": [True]})
    wh.write_table("weather scores", frame)
    assert wh.sql_schema("weather scores") == {"time_hour": "TIMESTAMP", "origin": "VARCHAR", "visib": "DOUBLE",
                                               "flights": "BIGINT", "late": "BOOLEAN"}
    with pytest.raises(WarehouseError, match="'nope'"):
        wh.sql_schema("nope")


def test_sql_schema_of_a_folder_of_files(tmp_path, nyc_frames):
    nyc_frames["airlines"].to_csv(tmp_path / "airlines.csv", index=False)
    nyc_frames["planes"].to_parquet(tmp_path / "planes.parquet")
    wh = Warehouse(f"files:///{tmp_path}")
    assert wh.sql_schema("airlines") == {"carrier": "VARCHAR", "name": "VARCHAR"}
    planes = wh.sql_schema("planes")
    assert list(planes) == list(nyc_frames["planes"].columns)
    assert planes["year"] in ("BIGINT", "DOUBLE", "INTEGER") and planes["tailnum"] == "VARCHAR"


def test_sql_schema_of_a_sqlalchemy_table_and_without_model_code(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    wh = Warehouse(f"sqlite:///{tmp_path / 'w.sqlite'}")
    wh.write_table("preds", PREVIOUS)
    assert wh.sql_schema("preds") == {"id": "BIGINT", "v": "TEXT"}
    script = ("import sys; from featrix_pipeline.warehouse import Warehouse; "
              f"print(Warehouse({wh.url!r}).sql_schema('preds')); "
              "assert not {'torch', 'dagster', 'featrix_model'} & set(sys.modules), 'model code imported'")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
