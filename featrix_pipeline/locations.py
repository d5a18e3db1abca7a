"""Where a warehouse and its tables are: what a ``warehouse.url`` means (a DuckDB file, a folder
of files, a SQLAlchemy database) and whether a table's ``source`` is a name that warehouse can
hold. Pure functions of text and the file system; nothing here connects to anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

FILE_SUFFIXES = {".parquet": "read_parquet", ".csv": "read_csv_auto", ".json": "read_json_auto",
                 ".jsonl": "read_json_auto", ".ndjson": "read_json_auto"}
SQLALCHEMY_DIALECTS = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql",
                       "sqlite": "sqlite", "mssql": "tsql", "snowflake": "snowflake",
                       "bigquery": "bigquery", "redshift": "redshift", "trino": "trino"}


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


def source_problem(source: str, kind: str) -> str | None:
    """What is wrong with a table's ``source`` for a warehouse of ``kind`` (None: nothing). A file
    warehouse reads ``<source>.parquet|csv|json`` inside its folder only; a database source is
    ``table``, ``schema.table`` or ``catalog.schema.table``, every part kept."""
    if not isinstance(source, str) or not source.strip():
        return "the source is empty: name the table (or file, without its suffix)"
    if kind == "files":
        if any(ch in source for ch in "/\\\0") or source.strip() in (".", "..") or ".." in source.split("."):
            return (f"source {source!r} is not a file name in the warehouse folder: a folder warehouse reads "
                    "<source>.parquet/.csv/.json from its own folder only; write the file name without a path "
                    "(or point warehouse.url at the folder that holds the file)")
        return None
    parts = source.split(".")
    if len(parts) > 3 or any(not p.strip() for p in parts):
        return (f"source {source!r} is not table, schema.table or catalog.schema.table ({len(parts)} dot-separated "
                "part(s), some empty)" if any(not p.strip() for p in parts) else
                f"source {source!r} has {len(parts)} dot-separated parts; write table, schema.table or "
                "catalog.schema.table")
    return None
