"""Warehouse access: an embedded DuckDB file (default), a folder of CSV/Parquet/JSON files read
through DuckDB, or any SQLAlchemy URL (PostgreSQL, ...). All SQL is built with sqlglot
expressions and quoted identifiers, rendered in the warehouse's dialect — never f-strings.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from sqlglot import exp

from featrix_pipeline import streaming
from featrix_pipeline.locations import (FILE_SUFFIXES, SQLALCHEMY_DIALECTS, featrix_home, resolve_url,  # noqa: F401
                                        source_problem)
from featrix_pipeline.secrets import display_url, redact

# how long a DuckDB connection waits for another process's lock on the file: 20 tries, 0.5 s apart
LOCK_ATTEMPTS, LOCK_WAIT_S = 20, 0.5
# SQLAlchemy URL schemes without a driver → the driver this project installs (the `postgres` extra)
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
# what a missing driver module is installed with
DRIVER_PACKAGES = {"psycopg": "pip install 'featrix-dagster[postgres]' (psycopg 3)",
                   "psycopg2": "pip install psycopg2-binary, or write the URL as postgresql+psycopg://… and "
                               "pip install 'featrix-dagster[postgres]'"}
# Dagster asset kinds (the UI's badges) by warehouse dialect
KIND_TAGS = {"postgres": "postgres", "duckdb": "duckdb", "mysql": "mysql", "sqlite": "sqlite", "tsql": "mssql",
             "snowflake": "snowflake", "bigquery": "bigquery", "redshift": "redshift", "trino": "trino"}
# dialects whose ALTER TABLE ... RENAME moves an unqualified new name out of the table's schema
QUALIFIED_RENAME = {"mysql", "snowflake", "trino"}


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or a table is missing; the message says what to do."""


@dataclass(repr=False)
class Warehouse:
    """A read/write handle on one warehouse. Cheap to create. A database warehouse keeps one
    SQLAlchemy engine (one connection pool) for the handle's life: a run creates the handle once
    (``WarehouseResource``) and ``close()`` disposes of the pool when the run ends. ``password``
    (from an environment variable) is added to the URL when connecting and never shown."""

    url: str
    schema: str | None = None
    password: str | None = None
    _engine_: Any = field(default=None, init=False, compare=False)

    def __repr__(self) -> str:
        return f"Warehouse({self.display_url!r}, schema={self.schema!r})"

    @property
    def display_url(self) -> str:
        """The URL with its password masked: the only form of it that messages may carry."""
        return display_url(self.url)

    @property
    def kind_tag(self) -> str:
        """The Dagster asset kind naming this warehouse (``postgres``, ``duckdb``, ``files``)."""
        return "files" if self.kind == "files" else KIND_TAGS.get(self.dialect, self.dialect)

    def _clean(self, text: str) -> str:
        return redact(text, self.url, self.password)

    def _engine(self):
        """The handle's one engine (created on first use, reused by every later call)."""
        if self._engine_ is None:
            import sqlalchemy
            from sqlalchemy.engine import make_url

            url = make_url(self.url)
            if url.drivername in DEFAULT_DRIVERS:
                url = url.set(drivername=DEFAULT_DRIVERS[url.drivername])
            if self.password:
                url = url.set(password=self.password)
            try:  # hide_parameters: bound values never appear in SQLAlchemy's error messages
                self._engine_ = sqlalchemy.create_engine(url, pool_pre_ping=True, hide_parameters=True)
            except ModuleNotFoundError as e:
                how = DRIVER_PACKAGES.get(e.name or "", f"install the Python package {e.name}")
                raise WarehouseError(f"The warehouse {self.display_url} needs the database driver {e.name!r}, which "
                                     f"is not installed: {how}.") from None
        return self._engine_

    def close(self) -> None:
        """Close the connection pool (a later call opens a new one)."""
        if self._engine_ is not None:
            self._engine_.dispose()
            self._engine_ = None

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
                raise WarehouseError(self._clean(
                    f"DuckDB warehouse {self.location} does not exist. Seed the demo with "
                    "`python -m featrix_pipeline.demo` or point warehouse.url in the spec at your file."))
            con = self._connect(read_only=read_only and self.location != ":memory:")
        else:
            if not Path(self.location).is_dir():
                raise WarehouseError(self._clean(f"Folder warehouse {self.location} does not exist."))
            con = duckdb.connect()
        try:
            yield con
        finally:
            con.close()

    def _table_expr(self, source: str) -> exp.Expression:
        """The FROM target for a table: a (schema-)qualified, quoted name, or a file reader call."""
        problem = source_problem(source, self.kind)
        if problem:
            raise WarehouseError(f"Table source {source!r}: {problem}.")
        if self.kind == "files":
            folder = Path(self.location).resolve()
            for suffix, reader in FILE_SUFFIXES.items():
                f = (folder / f"{source}{suffix}").resolve()
                if f.parent != folder:  # a link out of the folder: refused like a path
                    raise WarehouseError(f"Table source {source!r} resolves to {f}, outside the warehouse folder "
                                         f"{folder}; copy the file into the folder instead of linking it.")
                if f.exists():
                    return exp.func(reader, exp.Literal.string(str(f)))
            raise WarehouseError(
                f"No file for table '{source}' in {folder}: expected {source}.parquet, .csv, .json or .jsonl.")
        parts = source.split(".")
        catalog = parts[-3] if len(parts) > 2 else None
        db = parts[-2] if len(parts) > 1 else self.schema
        return exp.Table(this=exp.to_identifier(parts[-1], quoted=True),
                         db=exp.to_identifier(db, quoted=True) if db else None,
                         catalog=exp.to_identifier(catalog, quoted=True) if catalog else None)

    def query(self, sql: exp.Expression) -> pd.DataFrame:
        """The rows of a query. A database's come through a server-side cursor in Arrow batches of
        ``streaming.BATCH_ROWS`` rows, so the driver never holds a second copy of a whole table as
        Python tuples. DuckDB (a file or a folder of files) converts its own columnar result to
        pandas natively, chunk by chunk, with the types the profiler reads (nullable integers and
        booleans, dates as timestamps, decimals as floats)."""
        text = sql.sql(dialect=self.dialect)
        if self.kind == "sqlalchemy":
            import sqlalchemy

            with self._engine().connect() as con:
                result = con.execution_options(stream_results=True, max_row_buffer=streaming.BATCH_ROWS) \
                    .execute(sqlalchemy.text(text))
                return streaming.frame_from_rows(list(result.keys()), result.partitions(streaming.BATCH_ROWS))
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
            raise WarehouseError(self._clean(f"Table '{source}' could not be read from {self.display_url}: "
                                             f"{_first_line(e)}")) from None

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
            raise WarehouseError(self._clean(f"Reading table '{source}' from {self.display_url} failed: "
                                             f"{_first_line(e)}")) from None

    def write_table(self, name: str, df: pd.DataFrame) -> None:
        """Create or replace a table with the frame's rows (used for predictions and the demo seed).
        All or nothing where the database has transactional DDL: a process killed in the middle
        leaves the previous table (or none, if there was none) exactly as it was, never a partial
        one. DuckDB: one transaction around ``CREATE OR REPLACE TABLE``; SQLAlchemy: the rows go to
        a uniquely named table first, then one transaction drops the old table and renames the new
        one (atomic on PostgreSQL and SQLite; MySQL and Oracle commit each DDL statement on its
        own, so there a reader may briefly find no table, but never a partial one); files: the
        Parquet file is written next to its final name and moved over it with ``os.replace``."""
        if self.kind == "files":
            self._write_file(name, df)
        elif self.kind == "sqlalchemy":
            try:
                self._write_sqlalchemy(name, df)
            except WarehouseError:
                raise
            except Exception as e:
                raise WarehouseError(self._clean(f"Writing table '{name}' to {self.display_url} failed: "
                                                 f"{_first_line(e)}")) from None
        else:
            self._write_duckdb(name, df)

    def _write_file(self, name: str, df: pd.DataFrame) -> None:
        final = Path(self.location) / f"{name}.parquet"
        tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
        try:
            df.to_parquet(tmp, index=False)
            with open(tmp, "rb") as fh:  # on disk before it replaces the previous file
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _write_duckdb(self, name: str, df: pd.DataFrame) -> None:
        target = self._table_expr(name)
        Path(self.location).parent.mkdir(parents=True, exist_ok=True)
        con = self._connect_for_write()
        try:
            con.register("__featrix_frame", df)
            create = exp.Create(this=target, kind="TABLE", replace=True,
                                expression=exp.select("*").from_(exp.to_table("__featrix_frame")))
            con.execute(exp.Transaction().sql(dialect="duckdb"))
            try:
                con.execute(create.sql(dialect="duckdb"))
                con.execute(exp.Commit().sql(dialect="duckdb"))
            except BaseException:
                _quietly(lambda: con.execute(exp.Rollback().sql(dialect="duckdb")))
                raise
            con.unregister("__featrix_frame")
        finally:
            con.close()

    def _write_sqlalchemy(self, name: str, df: pd.DataFrame) -> None:
        import uuid

        import sqlalchemy

        # the unique part first: a dialect that truncates long names (PostgreSQL: 63) keeps it
        tmp_name = f"__featrix_{uuid.uuid4().hex[:12]}_{name}"[:60]
        target, tmp = self._named_table(name), self._named_table(tmp_name)
        renamed = (target.copy() if self.dialect in QUALIFIED_RENAME
                   else exp.Table(this=exp.to_identifier(name, quoted=True)))
        swap = [exp.Drop(tables=[target], kind="TABLE", exists=True),
                exp.Alter(this=tmp, kind="TABLE", actions=[exp.AlterRename(this=renamed)])]
        engine = self._engine()
        try:
            df.to_sql(tmp_name, engine, schema=self.schema, if_exists="fail", index=False, chunksize=streaming.BATCH_ROWS)
            with engine.begin() as con:
                if self.dialect == "sqlite":  # pysqlite runs DDL outside a transaction unless told
                    con.exec_driver_sql(exp.Transaction().sql(dialect="sqlite"))
                for statement in swap:
                    con.execute(sqlalchemy.text(statement.sql(dialect=self.dialect)))
        except BaseException:
            drop_tmp = exp.Drop(tables=[tmp], kind="TABLE", exists=True).sql(dialect=self.dialect)

            def cleanup():
                with engine.begin() as con:
                    con.execute(sqlalchemy.text(drop_tmp))
            _quietly(cleanup)
            raise

    def _named_table(self, name: str) -> exp.Table:
        """One quoted table name (dots included) in the handle's schema."""
        return exp.Table(this=exp.to_identifier(name, quoted=True),
                         db=exp.to_identifier(self.schema, quoted=True) if self.schema else None)

    def read_optional(self, name: str) -> pd.DataFrame | None:
        """The rows of a table this pipeline wrote (e.g. the predictions of a previous run), or
        None when it does not exist yet. The name is the one given to ``write_table``."""
        if self.kind == "files":
            folder = Path(self.location)
            if not folder.is_dir():
                raise WarehouseError(self._clean(f"Folder warehouse {self.location} does not exist."))
            if not any((folder / f"{name}{suffix}").exists() for suffix in FILE_SUFFIXES):
                return None
            return self.read_table(name)
        if self.kind == "sqlalchemy":
            import sqlalchemy

            try:
                with self._engine().connect() as con:
                    if not sqlalchemy.inspect(con).has_table(name, schema=self.schema):
                        return None
                return self.query(exp.select("*").from_(self._named_table(name)))
            except WarehouseError:
                raise
            except Exception as e:
                raise WarehouseError(self._clean(f"Reading table '{name}' from {self.display_url} failed: "
                                                 f"{_first_line(e)}")) from None
        table = self._table_expr(name)
        schema = exp.Literal.string(table.db) if table.db else exp.func("current_schema")
        tables = exp.Table(this=exp.to_identifier("tables", quoted=True),
                           db=exp.to_identifier("information_schema", quoted=True))
        exists = (exp.select(exp.Literal.number(1)).from_(tables)
                  .where(exp.column("table_name", quoted=True).eq(exp.Literal.string(table.name)))
                  .where(exp.column("table_schema", quoted=True).eq(schema)))
        with self._duckdb() as con:
            if not con.execute(exists.sql(dialect="duckdb")).fetchall():
                return None
            return con.execute(exp.select("*").from_(table).sql(dialect="duckdb")).df()

    def sql_schema(self, source: str) -> dict[str, str]:
        """Column → the warehouse's SQL type, in column order, without reading rows (DuckDB and
        files: ``DESCRIBE`` of the query; SQLAlchemy: the inspector). Cheap; imports no model code."""
        try:
            if self.kind == "sqlalchemy":
                import sqlalchemy

                problem = source_problem(source, self.kind)
                if problem:
                    raise WarehouseError(f"Table source {source!r}: {problem}.")
                parts = source.split(".")
                schema = parts[-2] if len(parts) > 1 else self.schema
                engine = self._engine()
                if len(parts) == 3 and parts[0] != engine.url.database:
                    raise WarehouseError(f"Table source {source!r} names catalog '{parts[0]}', but the warehouse "
                                         f"connection is to database '{engine.url.database}': point warehouse.url "
                                         "at that database or drop the catalog from the source.")
                with engine.connect() as con:
                    cols = sqlalchemy.inspect(con).get_columns(parts[-1], schema=schema)
                return {c["name"]: _type_text(c["type"], engine.dialect) for c in cols}
            describe = exp.Describe(this=exp.select("*").from_(self._table_expr(source)))
            with self._duckdb() as con:
                rows = con.execute(describe.sql(dialect="duckdb")).fetchall()
            return {str(r[0]): str(r[1]) for r in rows}
        except WarehouseError:
            raise
        except Exception as e:
            raise WarehouseError(self._clean(f"The schema of table '{source}' could not be read from "
                                             f"{self.display_url}: {_first_line(e)}")) from None

    def _connect_for_write(self):
        return self._connect(read_only=False)

    def _connect(self, read_only: bool, attempts: int = LOCK_ATTEMPTS, wait_s: float = LOCK_WAIT_S):
        """A DuckDB connection to the warehouse file. DuckDB lets one process write, and while it does,
        other processes can neither read nor write the file: a reader waits for the writer like a
        writer waits for readers, and both give up with the same message after ``attempts`` tries."""
        import time

        import duckdb

        for i in range(attempts):
            try:
                return duckdb.connect(self.location, read_only=read_only)
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():
                    raise WarehouseError(f"Cannot open {self.location} for {'reading' if read_only else 'writing'}: "
                                         f"{_first_line(e)}. Check that the path is a DuckDB database file "
                                         "(restore it, or seed the demo again with `python -m featrix_pipeline.demo`)."
                                         ) from None
                if i == attempts - 1:
                    raise WarehouseError(
                        f"Cannot open {self.location} for {'reading' if read_only else 'writing'}: "
                        f"{_first_line(e)}. Another process holds it (waited {attempts * wait_s:.0f}s); "
                        "close it or retry once it is done.") from None
                time.sleep(wait_s)
        raise WarehouseError(f"Cannot open {self.location}.")


def _first_line(e: BaseException) -> str:
    """A driver error's first line (the traceback and SQLAlchemy's background links are not kept)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _quietly(action) -> None:
    """Run a clean-up step after a failure without hiding the failure that caused it."""
    try:
        action()
    except Exception:
        pass


def _type_text(sql_type, dialect) -> str:
    try:
        return str(sql_type.compile(dialect=dialect))
    except Exception:  # a type the dialect cannot render (NullType, ...)
        return str(sql_type)


def warehouse_kind(url: str) -> str:
    """The Dagster asset kind of the warehouse at ``url`` (what the UI's badge says)."""
    return Warehouse(url).kind_tag
