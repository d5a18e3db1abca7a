"""Warehouse access: an embedded DuckDB file (default), a folder of CSV/Parquet/JSON files read
through DuckDB, or any SQLAlchemy URL (PostgreSQL, ...). All SQL is built with sqlglot
expressions and quoted identifiers, rendered in the warehouse's dialect — never f-strings.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
from sqlglot import exp

FILE_SUFFIXES = {".parquet": "read_parquet", ".csv": "read_csv_auto", ".json": "read_json_auto",
                 ".jsonl": "read_json_auto", ".ndjson": "read_json_auto"}
SQLALCHEMY_DIALECTS = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql",
                       "sqlite": "sqlite", "mssql": "tsql", "snowflake": "snowflake",
                       "bigquery": "bigquery", "redshift": "redshift", "trino": "trino"}


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or a table is missing; the message says what to do."""


def featrix_home() -> Path:
    return Path(os.environ.get("FEATRIX_HOME") or os.getcwd())


def resolve_url(url: str) -> tuple[str, str]:
    """Return (kind, location) with kind in duckdb | files | sqlalchemy; relative paths → FEATRIX_HOME."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in ("duckdb", "files", "file", ""):
        raw = url.split("://", 1)[1] if "://" in url else url
        raw = raw[1:] if raw.startswith("/") and not raw.startswith("//") and scheme else raw
        # duckdb:///data/x.duckdb → relative "data/x.duckdb"; duckdb:////abs/x.duckdb → "/abs/x.duckdb"
        raw = raw[1:] if raw.startswith("//") else raw
        if raw == ":memory:":
            return "duckdb", raw
        path = Path(raw)
        path = path if path.is_absolute() else featrix_home() / path
        if scheme in ("files", "file") or (scheme == "" and path.is_dir()):
            return "files", str(path)
        return "duckdb", str(path)
    return "sqlalchemy", url


@dataclass
class Warehouse:
    """A read/write handle on one warehouse. Cheap to create; connections open per call."""

    url: str
    schema: str | None = None

    @property
    def kind(self) -> str:
        return resolve_url(self.url)[0]

    @property
    def location(self) -> str:
        return resolve_url(self.url)[1]

    @property
    def dialect(self) -> str:
        if self.kind != "sqlalchemy":
            return "duckdb"
        scheme = urlparse(self.url).scheme.split("+")[0].lower()
        return SQLALCHEMY_DIALECTS.get(scheme, scheme)

    # -------------------------------------------------------------- connections

    @contextmanager
    def _duckdb(self, read_only: bool = True):
        import duckdb

        if self.kind == "duckdb":
            if self.location != ":memory:" and not Path(self.location).exists():
                raise WarehouseError(
                    f"DuckDB warehouse {self.location} does not exist. Seed the demo with "
                    "`python -m featrix_pipeline.demo` or point warehouse.url in the spec at your file.")
            con = duckdb.connect(self.location, read_only=read_only and self.location != ":memory:")
        else:
            if not Path(self.location).is_dir():
                raise WarehouseError(f"Folder warehouse {self.location} does not exist.")
            con = duckdb.connect()
        try:
            yield con
        finally:
            con.close()

    def _table_expr(self, source: str) -> exp.Expression:
        """The FROM target for a table: a (schema-)qualified, quoted name, or a file reader call."""
        if self.kind == "files":
            folder = Path(self.location)
            for suffix, reader in FILE_SUFFIXES.items():
                f = folder / f"{source}{suffix}"
                if f.exists():
                    return exp.func(reader, exp.Literal.string(str(f)))
            raise WarehouseError(
                f"No file for table '{source}' in {folder}: expected {source}.parquet, .csv, .json or .jsonl.")
        parts = source.split(".")
        db = parts[-2] if len(parts) > 1 else self.schema
        return exp.Table(this=exp.to_identifier(parts[-1], quoted=True),
                         db=exp.to_identifier(db, quoted=True) if db else None)

    def query(self, sql: exp.Expression) -> pd.DataFrame:
        text = sql.sql(dialect=self.dialect)
        if self.kind == "sqlalchemy":
            import sqlalchemy

            engine = sqlalchemy.create_engine(self.url)
            try:
                with engine.connect() as con:
                    return pd.read_sql(sqlalchemy.text(text), con)
            finally:
                engine.dispose()
        with self._duckdb() as con:
            return con.execute(text).df()

    # -------------------------------------------------------------- public API

    def columns(self, source: str) -> list[str]:
        """Column names of a table (empty query, so it is cheap everywhere)."""
        sql = exp.select("*").from_(self._table_expr(source)).limit(0)
        try:
            return list(self.query(sql).columns)
        except WarehouseError:
            raise
        except Exception as e:  # the driver's message is kept, the traceback is not
            raise WarehouseError(f"Table '{source}' could not be read from {self.url}: {str(e).splitlines()[0]}") from None

    def read_table(self, source: str, *, order_by: list[str] | None = None, limit: int | None = None,
                   columns: list[str] | None = None) -> pd.DataFrame:
        """Snapshot a table, ordered by ``order_by`` (the primary key) so reads are deterministic."""
        cols = [exp.column(c, quoted=True) for c in columns] if columns else [exp.Star()]
        sql = exp.select(*cols).from_(self._table_expr(source))
        if order_by:
            sql = sql.order_by(*[exp.column(c, quoted=True) for c in order_by])
        if limit:
            sql = sql.limit(limit)
        try:
            return self.query(sql)
        except WarehouseError:
            raise
        except Exception as e:
            raise WarehouseError(f"Reading table '{source}' from {self.url} failed: {str(e).splitlines()[0]}") from None

    def write_table(self, name: str, df: pd.DataFrame) -> None:
        """Create or replace a table with the frame's rows (used for predictions and the demo seed)."""
        if self.kind == "files":
            df.to_parquet(Path(self.location) / f"{name}.parquet", index=False)
            return
        target = self._table_expr(name)
        if self.kind == "sqlalchemy":
            import sqlalchemy

            engine = sqlalchemy.create_engine(self.url)
            try:
                df.to_sql(name, engine, schema=self.schema, if_exists="replace", index=False)
            finally:
                engine.dispose()
            return
        Path(self.location).parent.mkdir(parents=True, exist_ok=True)
        con = self._connect_for_write()
        try:
            con.register("__featrix_frame", df)
            create = exp.Create(this=target, kind="TABLE", replace=True,
                                expression=exp.select("*").from_(exp.to_table("__featrix_frame")))
            con.execute(create.sql(dialect="duckdb"))
            con.unregister("__featrix_frame")
        finally:
            con.close()

    def _connect_for_write(self, attempts: int = 20, wait_s: float = 0.5):
        """A read-write DuckDB connection. DuckDB allows one writer process, and readers of other
        processes (e.g. a concurrent snapshot step) hold the file briefly: wait for them instead of failing."""
        import time

        import duckdb

        for i in range(attempts):
            try:
                return duckdb.connect(self.location)
            except duckdb.IOException as e:
                if "lock" not in str(e).lower() or i == attempts - 1:
                    raise WarehouseError(f"Cannot open {self.location} for writing: {str(e).splitlines()[0]}. "
                                         "Another process holds it; close it or retry.") from None
                time.sleep(wait_s)
        raise WarehouseError(f"Cannot open {self.location} for writing.")
