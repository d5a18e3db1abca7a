"""Key types: one vocabulary for "can these two key columns be joined?".

A join key is compared the way a warehouse compares it: an integer column only ever equals an
integer (or float) column, a string column only a string column, and so on. Both the pipeline's
join checks and the model's relationship parser ask the same questions of a pair of key columns,
so both use these functions:

* ``key_family(series)`` names the kind of value a column holds: integer, float, string, datetime,
  bool, empty (only NULLs) or other;
* ``compatible(family_a, family_b)`` says whether keys of two families can ever compare equal;
* ``comparable(series, family, other_family)`` rewrites one side so that equal keys of compatible
  families are equal Python/pandas values (``1`` and ``1.0``, or the same instant in two time zones);
* ``naive_utc(series)`` turns any datetime-like column into naive UTC timestamps.

``SQL_TYPE`` gives the warehouse type name of each family, for messages such as
``CAST(orders.customer_id AS BIGINT)``. Pure pandas/numpy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

FAMILIES = ("integer", "float", "string", "datetime", "bool", "empty", "other")
SQL_TYPE = {"integer": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "datetime": "TIMESTAMP", "bool": "BOOLEAN"}

# pandas' infer_dtype names for object columns, mapped to a family (anything else is "other")
_INFERRED = {"string": "string", "integer": "integer", "floating": "float", "mixed-integer-float": "float",
             "decimal": "float", "boolean": "bool", "datetime": "datetime", "datetime64": "datetime",
             "date": "datetime", "empty": "empty"}


def key_family(series: pd.Series) -> str:
    """The kind of value ``series`` holds: one of ``FAMILIES``.

    Typed columns are named by their dtype (nullable ``Int64``/``boolean``/``string`` included); a
    categorical column by the type of its categories, or "empty" when every value is NULL; an
    object column by the values it holds, NULLs skipped ("empty" when there are only NULLs, "other"
    for mixed or unusual values such as lists or mixed strings and numbers).
    """
    t = series.dtype
    if isinstance(t, pd.CategoricalDtype):
        return key_family(pd.Series(series.cat.categories)) if series.notna().any() else "empty"
    if pd.api.types.is_bool_dtype(t):
        return "bool"
    if pd.api.types.is_integer_dtype(t):
        return "integer"
    if pd.api.types.is_float_dtype(t):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(t):
        return "datetime"
    if pd.api.types.is_string_dtype(t) and t != object:
        return "string"
    return _INFERRED.get(pd.api.types.infer_dtype(series, skipna=True), "other")


def compatible(family_a: str, family_b: str) -> bool:
    """Whether keys of the two families can compare equal in a join.

    True for the same family, for integer with float (compared as numbers), and when either side
    is "empty" (only NULLs: nothing to compare, so no conflict). Anything else, such as integer
    with string or datetime with string, never matches until one side is cast.
    """
    return family_a == family_b or "empty" in (family_a, family_b) or {family_a, family_b} == {"integer", "float"}


def naive_utc(series: pd.Series) -> pd.Series:
    """``series`` as naive UTC ``datetime64[us]``, so that instants compare equal across time zones.

    Strings and other values are parsed (any mix of formats); values that cannot be parsed become
    NaT. Time-zone-aware values are converted to UTC; naive values are taken to be UTC already.
    """
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            series = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.astype("datetime64[us]")


def comparable(series: pd.Series, family: str, other_family: str) -> pd.Series:
    """``series`` (of ``family``) rewritten so it can be compared with a key of ``other_family``.

    Integer with integer becomes nullable ``Int64``; integer or float with a numeric other side
    becomes float64 (so 1 == 1.0); datetimes become naive UTC; strings ``str``; bools ``boolean``.
    For incompatible families, or when a conversion fails, the values are returned as plain Python
    objects. The index is reset, so the result lines up with row positions.
    """
    series = series.reset_index(drop=True)
    try:
        if family == other_family == "integer":
            return series.astype("Int64")
        if family in ("integer", "float") and other_family in ("integer", "float"):
            return pd.Series(series.to_numpy(dtype="float64", na_value=np.nan))
        if family == other_family == "datetime":
            return naive_utc(series)
        if family == other_family == "string":
            return series.astype("str")
        if family == other_family == "bool":
            return series.astype("boolean")
    except (TypeError, ValueError, OverflowError):
        pass
    return series.astype(object)
