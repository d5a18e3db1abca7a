"""Predictor targets declared in the spec: a column, or a SQL expression over the table's columns."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
from featrix_model.inputs import class_usable, read_target
from featrix_model.tasks import TaskType, detect_kind
from featrix_pipeline.expressions import ExpressionError, parse_scalar, scalar_select
from featrix_pipeline.spec import TargetSpec


def target_values(df: pd.DataFrame, target: TargetSpec) -> pd.Series:
    """The target column for each row of ``df`` (same index, same length — rows are never dropped).

    An ``expression`` target is checked (one scalar expression over the table's own columns,
    ``featrix_pipeline.expressions``) and evaluated by an in-memory DuckDB over the frame alone.
    """
    if not target.expression:
        if target.column not in df.columns:
            raise KeyError(f"target '{target.name}': column '{target.table}.{target.column}' is not in the table.")
        return df[target.column].rename(target.name)
    try:
        tree = parse_scalar(target.expression, target.table, [str(c) for c in df.columns])
    except ExpressionError as e:
        raise ValueError(f"target '{target.name}' on table '{target.table}': expression refused: {e}.") from None
    sql = scalar_select(tree, "__target", "__featrix_frame")
    # a private in-memory database that can read no file and load no extension: even a tree that got
    # past the guard could reach nothing but the frame
    con = duckdb.connect(config={"enable_external_access": False, "autoload_known_extensions": False,
                                 "autoinstall_known_extensions": False, "lock_configuration": True})
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


def labelled(values: pd.Series, kind: str = "auto") -> tuple[np.ndarray, str | None]:
    """Which rows have a target value a predictor can learn from, and what to tell the user about the
    others: a value that is missing, or — read the way ``Predictor.fit`` reads it — text such as 'n/a'
    in a target of numbers (a regression: every text value; a classification: only missing markers
    such as 'n/a' or 'null', other text being a class of its own)."""
    values = values.reset_index(drop=True)
    reading = read_target(values)
    if not reading.unparsed.any():
        return values.notna().to_numpy(), None
    regression = kind == "regression" or (kind == "auto" and detect_kind(values)[0] == TaskType.REGRESSION)
    if regression:
        return values.notna().to_numpy() & reading.usable, reading.unparsed_warning(values)
    keep = class_usable(values, reading)
    dropped = values[~keep]
    note = (f"{len(dropped):,} rows of target '{values.name}' hold missing markers "
            f"({', '.join(repr(v) for v in dropped.value_counts().index[:3])}): counted as no target value; "
            "its other text values are classes") if len(dropped) else None
    return values.notna().to_numpy() & keep, note
