"""The warehouse layer against a real PostgreSQL server (tests/postgres.py) with password
authentication: reads in Arrow batches through a server-side cursor, the atomic write-back, one
connection pool per handle, and a password that appears in no message."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pandas as pd
import psycopg
import pytest
from sqlglot import exp

from featrix_pipeline import streaming
from featrix_pipeline.secrets import MASK, display_url, redact
from featrix_pipeline.warehouse import Warehouse, WarehouseError


@pytest.fixture()
def database(postgres, request) -> str:
    name = "t_" + uuid.uuid4().hex[:10]
    return postgres.create_database(name)


def _psql(postgres, database: str):
    return psycopg.connect(host=postgres.host, port=postgres.port, user=postgres.user, password=postgres.password,
                           dbname=database, autocommit=True)


def _typed_table(postgres, database: str, rows: int = 23) -> None:
    """A table with the column types a warehouse holds (numeric, uuid, json, dates, ...), one column
    null for a whole batch at the start, created and filled through the driver with parameters."""
    columns = [("id", "integer"), ("amount", "numeric(10,2)"), ("ref", "uuid"), ("doc", "jsonb"),
               ("day", "date"), ("at", "timestamptz"), ("ok", "boolean"), ("note", "text"), ("late", "double precision")]
    create = exp.Create(this=exp.Schema(this=exp.to_table("typed"), expressions=[
        exp.ColumnDef(this=exp.to_identifier(n), kind=exp.DataType.build(t, dialect="postgres")) for n, t in columns]),
        kind="TABLE")
    insert = exp.Insert(this=exp.to_table("typed"), expression=exp.Values(
        expressions=[exp.Tuple(expressions=[exp.Placeholder() for _ in columns])]))
    values = [(i, decimal.Decimal(f"{i}.25"), uuid.UUID(int=i), psycopg.types.json.Jsonb({"k": i, "tags": ["a"] * (i % 3)}),
               dt.date(2024, 1, 1 + i % 28), dt.datetime(2024, 1, 1, i % 24, tzinfo=dt.timezone.utc), i % 2 == 0,
               None if i < 9 else f"row {i}", None if i % 5 == 0 else i / 4) for i in range(rows)]
    with _psql(postgres, database) as con:
        con.execute(create.sql(dialect="postgres"))
        with con.cursor() as cur:
            cur.executemany(insert.sql(dialect="postgres"), values)


def test_reads_stream_in_arrow_batches_and_keep_the_rows(postgres, database, monkeypatch):
    _typed_table(postgres, database)
    monkeypatch.setattr(streaming, "BATCH_ROWS", 7)  # 23 rows: four batches, the first with `note` all null
    seen, fetching = [], []
    real = streaming.frame_from_rows

    def watched(parts):
        for p in parts:
            if not seen:  # mid-read: the reading session's last statement is a FETCH from its cursor
                with _psql(postgres, database) as other:
                    fetching.extend(q for (q,) in other.execute(exp.select("query").from_("pg_stat_activity")
                                                               .sql(dialect="postgres")).fetchall() if q)
            seen.append(len(p))
            yield p
    monkeypatch.setattr(streaming, "frame_from_rows", lambda names, parts: real(names, watched(parts)))
    wh = Warehouse(postgres.url(database), password=postgres.password)
    df = wh.read_table("typed", order_by=["id"])
    assert seen == [7, 7, 7, 2]
    assert any(q.lstrip().upper().startswith("FETCH") for q in fetching), f"no server-side cursor: {fetching}"
    assert len(df) == 23 and list(df["id"]) == list(range(23))
    assert df["amount"].dtype == "float64" and df["amount"].iloc[3] == 3.25
    assert df["ref"].iloc[5] == str(uuid.UUID(int=5))
    assert df["note"].isna().sum() == 9 and df["note"].iloc[10] == "row 10"
    assert str(df["at"].dtype).startswith("datetime64") and str(df["at"].dt.tz) == "UTC"
    assert df["ok"].tolist()[:3] == [True, False, True]
    assert df["late"].isna().sum() == 5
    assert wh.columns("typed") == [c for c in df.columns]
    assert wh.sql_schema("typed")["amount"].startswith("NUMERIC")
    wh.close()


def test_write_back_is_one_swap_and_one_pool_serves_the_handle(postgres, database, monkeypatch):
    import sqlalchemy

    made = []
    real = sqlalchemy.create_engine
    monkeypatch.setattr(sqlalchemy, "create_engine", lambda *a, **k: made.append(a) or real(*a, **k))
    wh = Warehouse(postgres.url(database), password=postgres.password)
    assert wh.read_optional("scores") is None
    wh.write_table("scores", pd.DataFrame({"id": [1, 2, 3], "p": [0.1, 0.5, 0.9]}))
    wh.write_table("scores", pd.DataFrame({"id": [4, 5], "p": [0.2, 0.3]}))
    back = wh.read_optional("scores")
    assert back["id"].tolist() == [4, 5]
    assert len(made) == 1, "every call of one handle goes through one engine (one connection pool)"
    wh.close()
    with _psql(postgres, database) as con:  # no temporary table left behind by the swap
        names = [r[0] for r in con.execute(exp.select("tablename").from_("pg_tables")
                                           .where("schemaname = 'public'").sql(dialect="postgres")).fetchall()]
    assert names == ["scores"]


def test_a_failing_connection_names_the_server_but_never_the_password(postgres, database):
    wrong = Warehouse(postgres.url(database), password="not-" + postgres.password)
    with pytest.raises(WarehouseError) as e:
        wrong.columns("anything")
    text = str(e.value)
    assert "password authentication failed" in text and postgres.password not in text
    assert f"{postgres.host}:{postgres.port}/{database}" in text
    inline = Warehouse(postgres.url(database, with_password=True).replace(str(postgres.port), "1"))  # nothing listens
    with pytest.raises(WarehouseError) as e:
        inline.read_table("anything")
    assert postgres.password not in str(e.value) and MASK in str(e.value)
    assert postgres.password not in repr(inline)


def test_urls_are_shown_masked_and_messages_redacted():
    url = "postgresql://ana:s3cr%40t-pw@db.example:5432/sales?sslmode=require&token=abc123xyz"
    shown = display_url(url)
    assert "s3cr" not in shown and "abc123xyz" not in shown and "db.example:5432/sales" in shown
    said = redact(f"could not reach {url}; password s3cr@t-pw rejected", url)
    assert "s3cr" not in said and "abc123xyz" not in said
    assert display_url("duckdb:///data/x.duckdb") == "duckdb:///data/x.duckdb"


def test_a_missing_driver_says_what_to_install():
    with pytest.raises(WarehouseError, match=r"needs the database driver 'pg8000'.*install"):
        Warehouse("postgresql+pg8000://ana@localhost/sales", password="pw-123456").columns("t")


def test_the_demo_seeds_a_postgres_warehouse(postgres, database, monkeypatch, capsys):
    from featrix_pipeline import demo

    monkeypatch.setenv("FEATRIX_TEST_SEED_PW", postgres.password)
    demo.main(["--url", postgres.url(database), "--password-env", "FEATRIX_TEST_SEED_PW", "--days", "1"])
    said = capsys.readouterr().out
    assert database in said and postgres.password not in said
    wh = Warehouse(postgres.url(database), password=postgres.password)
    assert set(demo.TABLES) <= {t for t in demo.TABLES if wh.read_optional(t) is not None}
    assert 800 < len(wh.read_table("flights")) < 1000  # the first day's departures
    wh.close()


class _Leaky:
    """An engine whose every use fails with a message quoting the URL and the password, as a driver
    could: what reaches the caller must have both masked."""

    def __init__(self, text: str):
        self.text = text
        self.url = type("U", (), {"database": "sales"})()

    def connect(self):
        raise RuntimeError(self.text)

    begin = connect
    raw_connection = connect


@pytest.mark.filterwarnings("ignore:pandas only supports SQLAlchemy")  # the failing stand-in engine below
@pytest.mark.parametrize("call", ["columns", "read_table", "sql_schema", "read_optional", "write_table"])
def test_every_error_path_masks_what_a_driver_says(call, monkeypatch):
    password = "pw-Very-Secret-77"
    url = f"postgresql+psycopg://ana:{password}@db.example:5432/sales"
    wh = Warehouse(url)
    monkeypatch.setattr(wh, "_engine", lambda: _Leaky(f"connection to {url} failed: bad password {password}"))
    args = ("scores", pd.DataFrame({"a": [1]})) if call == "write_table" else ("scores",)
    with pytest.raises(WarehouseError) as e:
        getattr(wh, call)(*args)
    assert password not in str(e.value) and "db.example:5432/sales" in str(e.value) and MASK in str(e.value)


@pytest.mark.parametrize("url,secret", [("postgresql:/ana:pw-typo-one@db/sales", "pw-typo-one"),
                                        ("postgresql/ana:pw-typo-two@db/sales", "pw-typo-two"),
                                        ("postgresql//ana:pw/typo/three@db/sales", "pw/typo/three"),
                                        ("postgresql:ana:pw-typo-four@db", "pw-typo-four")])
def test_mistyped_urls_are_refused_and_masked(url, secret, tmp_path):
    from featrix_pipeline.secrets import url_password

    assert url_password(url) == secret and secret not in display_url(url)
    assert url_password("duckdb:///C:/data/me@corp.duckdb") is None  # a file path, not a login


def test_a_mistyped_url_is_masked_too():
    url = "postgresql//ana:pw-typo-secret@db.example/sales"  # no ':' after the scheme: not a database URL
    with pytest.raises(WarehouseError) as e:
        Warehouse(url).columns("t")
    assert "pw-typo-secret" not in str(e.value)
    assert "pw-typo-secret" not in display_url(url) and redact(f"x {url} y", url).count("pw-typo") == 0


def test_columns_arrow_cannot_type_are_kept_as_python_values():
    batches = [[(1, {"a": 1}, 2**70, None), (2, {"a": 2}, 3, None)],
               [("abc", {"a": "x"}, 4, 1.5), (None, None, None, None)]]  # SQLite-style mixed values, a JSON shape change
    df = streaming.frame_from_rows(["mixed", "doc", "big", "late"], batches)
    assert len(df) == 4 and list(df.columns) == ["mixed", "doc", "big", "late"]
    assert df["mixed"].tolist()[:3] == [1, 2, "abc"] and df["big"].iloc[0] == 2**70
    assert df["doc"].iloc[0] == {"a": 1} and df["doc"].iloc[2] == {"a": "x"}
    assert df["late"].dtype == "float64" and df["late"].iloc[2] == 1.5  # an all-null batch joins the typed ones


def test_postgres_types_without_an_arrow_type_read(postgres, database):
    with _psql(postgres, database) as con:
        con.execute(exp.Create(this=exp.Schema(this=exp.to_table("net"), expressions=[
            exp.ColumnDef(this=exp.to_identifier("id"), kind=exp.DataType.build("int")),
            exp.ColumnDef(this=exp.to_identifier("ip"), kind=exp.DataType.build("inet", dialect="postgres")),
            exp.ColumnDef(this=exp.to_identifier("span"), kind=exp.DataType.build("int4range", dialect="postgres"))]),
            kind="TABLE").sql(dialect="postgres"))
        insert = exp.Insert(this=exp.to_table("net"), expression=exp.Values(
            expressions=[exp.Tuple(expressions=[exp.Placeholder()] * 3)])).sql(dialect="postgres")
        with con.cursor() as cur:
            cur.executemany(insert, [(1, "10.0.0.1", psycopg.types.range.Range(1, 5)), (2, "::1", None)])
    df = Warehouse(postgres.url(database), password=postgres.password).read_table("net", order_by=["id"])
    assert df["id"].tolist() == [1, 2] and str(df["ip"].iloc[0]) == "10.0.0.1" and df["span"].iloc[1] is None
