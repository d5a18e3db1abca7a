"""The pipeline on a real PostgreSQL warehouse (tests/postgres.py: a server started for the tests,
password authentication over TCP): the demo slice loaded into it, then one real Dagster run of the
data-quality path (snapshots, profiles, Great Expectations suites, join reports), the flights space,
the arr_delay15 predictor and its write-back into PostgreSQL. The password comes from an environment
variable the spec names, and appears in no log line, event, metadata entry, report or artifact."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from sqlglot import exp

from assets.definitions import build_assets, build_resources
from featrix_pipeline.resources import build_warehouse
from featrix_pipeline.spec import SpecError, load_spec
from featrix_pipeline.topology import Topology
from featrix_pipeline.warehouse import Warehouse
from tests.assets.conftest import BUDGET, materialize
from tests.conftest import DEMO_SPEC, slice_margins

PASSWORD_ENV, URL_ENV = "FEATRIX_TEST_PG_PASSWORD", "FEATRIX_TEST_PG_URL"


def _pg_spec(folder: Path, url: str | None = None) -> Path:
    """The slice's spec on PostgreSQL: ``url`` in the spec and the password in PASSWORD_ENV, or
    (no ``url``) the whole URL, password included, in URL_ENV."""
    warehouse = f"  url: {url}\n  password_env: {PASSWORD_ENV}\n" if url else f"  url_env: {URL_ENV}\n"
    text = slice_margins(DEMO_SPEC.read_text()).replace("  url: duckdb:///data/nycflights13.duckdb\n", warehouse)
    assert warehouse in text
    path = folder / "spec.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def pg_run(postgres, nyc_frames, tmp_path_factory):
    """The slice in a fresh PostgreSQL database, and one run up to arr_delay15's predictions. The
    URL, password included, comes from an environment variable: the case where a careless message
    or report header quoting the URL would show the password."""
    home = tmp_path_factory.mktemp("pg_home")
    database = postgres.create_database("slice_" + uuid.uuid4().hex[:8])
    url = postgres.url(database)
    wh = Warehouse(url, password=postgres.password)
    for name, frame in nyc_frames.items():
        wh.write_table(name, frame)
    wh.close()
    spec_path = _pg_spec(home)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.DEBUG)
    import sqlalchemy

    engines, disposed = [], []
    real_create, real_dispose = sqlalchemy.create_engine, sqlalchemy.engine.Engine.dispose
    instance = dg.DagsterInstance.ephemeral()  # its event log holds the run's log lines
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sqlalchemy, "create_engine", lambda *a, **k: engines.append(real_create(*a, **k)) or engines[-1])
        mp.setattr(sqlalchemy.engine.Engine, "dispose", lambda self, *a, **k: disposed.append(self) or
                   real_dispose(self, *a, **k))
        mp.setenv("FEATRIX_HOME", str(home))
        mp.setenv("FEATRIX_TIME_BUDGET_S", BUDGET)
        mp.setenv(URL_ENV, postgres.url(database, with_password=True))
        mp.delenv("FEATRIX_LIGHTGBM_MARGIN", raising=False)
        logging.getLogger().addHandler(handler)
        try:
            topology = Topology.from_spec(load_spec(spec_path))
            quality = [dg.AssetKey(list(plan.key(stage))) for plan in topology.tables.values()
                       for stage in ("raw", "profile", "filtered")]
            quality += [dg.AssetKey(list(topology.join_key(rel))) for rel in topology.spec.relationships]
            selection = (dg.AssetSelection.keys(dg.AssetKey(["arr_delay15", "predictions"])).upstream()
                         | dg.AssetSelection.keys(*quality))
            spec, result, checks = materialize(spec_path, selection=selection, instance=instance)
        finally:
            logging.getLogger().removeHandler(handler)
    return {"home": home, "database": database, "spec": spec, "result": result, "checks": checks,
            "records": records, "server": postgres, "instance": instance, "engines": engines, "disposed": disposed}


def _rows(server, database: str, table: str) -> list[tuple]:
    with psycopg.connect(host=server.host, port=server.port, user=server.user, password=server.password,
                         dbname=database) as con:
        return con.execute(exp.select("*").from_(exp.to_table(table, quoted=True)).sql(dialect="postgres")).fetchall()


def test_the_slice_runs_end_to_end_on_postgres(pg_run, nyc_frames):
    result, checks = pg_run["result"], pg_run["checks"]
    failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    for table in ("flights", "weather", "planes", "airports", "airlines"):
        assert {f"{table}/raw", f"{table}/profile", f"{table}/filtered"} <= done
    assert {"flights/embedding_space", "arr_delay15/predictor", "arr_delay15/predictions"} <= done
    assert checks[("flights/profile", "primary_key")].passed
    assert checks[("flights_planes/join_report", "cardinality")].passed
    assert checks[("flights/embedding_space", "no_embedding_collapse")].passed
    written = _rows(pg_run["server"], pg_run["database"], "arr_delay15_predictions")
    assert len(written) == len(nyc_frames["flights"]), "every flight scored and written back into PostgreSQL"


def test_one_connection_pool_serves_the_whole_run_and_is_closed(pg_run):
    assert len(pg_run["engines"]) == 1, "every asset of the run shares the warehouse resource's engine"
    assert pg_run["engines"][0] in pg_run["disposed"], "the pool is closed when the run ends"


def test_assets_name_the_warehouse_they_read(pg_run):
    defs = dg.Definitions(assets=build_assets(Topology.from_spec(pg_run["spec"])), resources=build_resources(pg_run["spec"]))
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert "postgres" in specs["flights/raw"].kinds and "duckdb" not in specs["flights/raw"].kinds
    assert "postgres" in specs["arr_delay15/predictions"].kinds


def test_the_password_appears_nowhere(pg_run):
    password = pg_run["server"].password
    result = pg_run["result"]
    events = [str(e) for e in result.all_events]
    assert any("flights/raw" in e for e in events)
    assert not [e for e in events if password in e]
    logged = [r.getMessage() for r in pg_run["records"]]
    assert logged and not [m for m in logged if password in m]
    run_log = [f"{e.user_message} {e.dagster_event}" for e in pg_run["instance"].all_logs(result.run_id)]
    assert any("[flights] embedding space epoch" in line for line in run_log)  # context.log lines are in it
    assert not [line for line in run_log if password in line]
    files = [p for p in pg_run["home"].rglob("*") if p.is_file() and p.suffix in (".md", ".html", ".json", ".txt", ".log")]
    assert any(p.name == "report.md" for p in files)
    assert not [p for p in files if password in p.read_text(errors="replace")]
    resource = build_warehouse(pg_run["spec"])  # what the UI shows of the resource: the variable's name
    assert isinstance(resource.url, dg.EnvVar) and resource.url.env_var_name == URL_ENV


def test_the_password_can_come_alone_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    spec = load_spec(_pg_spec(tmp_path, "postgresql://ana@db.example/sales"))
    resource = build_warehouse(spec)
    assert resource.url == "postgresql://ana@db.example/sales"
    assert isinstance(resource.password, dg.EnvVar) and resource.password.env_var_name == PASSWORD_ENV


def test_a_password_in_the_spec_is_refused_and_not_repeated(tmp_path):
    spec = _pg_spec(tmp_path, "postgresql://ana:Hunter2-long@db.example/sales")
    with pytest.raises(SpecError) as e:
        load_spec(spec)
    assert "password_env" in str(e.value) and "Hunter2-long" not in str(e.value)
