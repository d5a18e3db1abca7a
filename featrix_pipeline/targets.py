"""Predictor targets declared in the spec: a column, or a SQL expression over the table's columns."""

from __future__ import annotations

import duckdb
import pandas as pd
import sqlglot
from sqlglot import exp

from featrix_pipeline.spec import TargetSpec


def target_values(df: pd.DataFrame, target: TargetSpec) -> pd.Series:
    """The target column for each row of ``df`` (same index, same length — rows are never dropped).

    An ``expression`` target is evaluated by DuckDB over the frame, with the expression parsed by
    sqlglot (so a typo gives a parse error naming the target, not a wrong column).
    """
    if not target.expression:
        if target.column not in df.columns:
            raise KeyError(f"target '{target.name}': column '{target.table}.{target.column}' is not in the table.")
        return df[target.column].rename(target.name)
    expr = sqlglot.parse_one(target.expression, dialect="duckdb")
    sql = exp.select(exp.alias_(expr, "__target", quoted=True)).from_(exp.to_table("__featrix_frame"))
    con = duckdb.connect()
    try:
        con.register("__featrix_frame", df)
        out = con.execute(sql.sql(dialect="duckdb")).df()["__target"]
    except duckdb.Error as e:
        raise ValueError(f"target '{target.name}': expression {target.expression!r} failed on table "
                         f"'{target.table}': {str(e).splitlines()[0]}") from None
    finally:
        con.close()
    out.index = df.index
    return out.rename(target.name)
