"""Reading a whole table from PostgreSQL: the pipeline's streamed read (a server-side cursor, Arrow
batches) against ``pandas.read_sql`` (the driver buffers every row first), in fresh processes, side
by side: seconds and the peak resident memory of each. All 336,776 demo flights by default.

    FEATRIX_BENCH_PG_PASSWORD=... .venv/bin/python bench/warehouse_reads.py \
        --url postgresql://featrix@127.0.0.1:5432/demo [--password-env FEATRIX_BENCH_PG_PASSWORD] [--load]

``--load`` writes the demo tables into the database first (``python -m featrix_pipeline.demo``).
Results: ``bench/results/warehouse_reads.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, {repo!r})
from featrix_pipeline.warehouse import Warehouse
wh = Warehouse({url!r}, password=os.environ.get({env!r}))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if {method!r} == "streamed":
    df = wh.read_table("flights", order_by=["flight_id"])
else:
    import pandas as pd, sqlalchemy
    from sqlglot import exp
    query = exp.select("*").from_(exp.to_table("flights", quoted=True)).order_by(exp.column("flight_id", quoted=True))
    with wh._engine().connect() as con:
        df = pd.read_sql(sqlalchemy.text(query.sql(dialect="postgres")), con)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"rows": len(df), "seconds": round(seconds, 2), "peak_rss_mb": round(peak / 1024, 1),
                  "rss_added_mb": round((peak - before) / 1024, 1), "frame_mb": round(df.memory_usage(deep=True).sum() / 2**20, 1)}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--password-env", default="FEATRIX_BENCH_PG_PASSWORD")
    ap.add_argument("--load", action="store_true")
    args = ap.parse_args()
    if args.load:
        subprocess.run([sys.executable, "-m", "featrix_pipeline.demo", "--url", args.url, "--password-env",
                        args.password_env], check=True, cwd=HERE.parent)
    out = {}
    for method in ("read_sql", "streamed", "read_sql", "streamed"):  # twice each, alternating
        code = CHILD.format(repo=str(HERE.parent), url=args.url, env=args.password_env, method=method)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out.setdefault(method, []).append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(method, out[method][-1])
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "warehouse_reads.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
