"""What the modelling library refuses, or warns about, in the data it is given — before numpy,
pandas or torch would fail somewhere deep with a message that names nothing.

Every message names the table (when the caller gave its name), the column and a row where it
applies, and says what to do.

* Tables (``check_table``): not a DataFrame, no rows, no columns, duplicate column names,
  non-string column names (refused rather than renamed: a space's plan, saved artifacts and every
  later ``encode`` / ``predict`` find columns by their names, so a silent rename would make the
  frames given later not match). ``small_table_warning``: a table under ``SMALL_TABLE_ROWS`` rows
  trains, with a warning that says what so few rows cost.
* Column values (``check_values``): ``bytes`` cells (not text: decode them first); lists mixed
  with plain values in one column (no encoder reads both).
* Predictor targets (``read_target``, ``check_target``): no values, ±inf, a single value. A target
  whose values are text is read with the space's own type detection (:mod:`featrix_model.types`):
  when most of its values parse as numbers it is a number target, and the values that do not
  ("n/a", "unknown") are missing — said in the kind's reason and warned about, never silent.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from featrix_model.types import detect_with_facts, non_null

#: Below this many rows a table trains with a warning: 32 is the smallest training batch (every
#: step then sees every row), and from fewer than ``VALIDATION_ROWS`` no row is held out.
SMALL_TABLE_ROWS = 32
VALIDATION_ROWS = 20  # the space's trainer holds out validation rows only from 20 rows on
_LISTLIKE = (list, tuple, set, np.ndarray)
_BYTES = (bytes, bytearray, memoryview)
_PLAIN_KINDS = {"string", "empty", "floating", "integer", "mixed-integer-float", "boolean", "decimal",
                "datetime64", "datetime", "date", "time", "timedelta64", "timedelta", "period", "interval",
                "categorical", "complex"}


def _where(table: str | None) -> str:
    return f"table '{table}'" if table else "the table"


def _show(v, width: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= width else r[: width - 3] + "..."


# ---------------------------------------------------------------- tables

def check_table(df, table: str | None = None) -> None:
    """Refuse a table no space can be fitted on; each message says how to fix it."""
    where = _where(table)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{where} must be a pandas DataFrame, got {type(df).__name__}: "
                        "build one with pd.DataFrame(...) first.")
    if df.shape[1] == 0:
        raise ValueError(f"{where} has no columns: an embedding space needs at least 2 columns to learn from.")
    if len(df) == 0:
        raise ValueError(f"{where} has no rows (columns: {list(df.columns)[:10]}): there is nothing to learn from. "
                         "Check the query or filter that produced it; a useful space needs a few hundred rows "
                         "or more.")
    names = [c for c in df.columns if not isinstance(c, str)]
    if names:
        raise ValueError(f"{where} has column names that are not strings: {names[:10]} "
                         f"({', '.join(sorted({type(c).__name__ for c in names}))}). Columns are found by name "
                         "in the saved space and in every later encode/predict call, so they are not renamed "
                         "silently: rename them before fitting, e.g. df.columns = df.columns.astype(str).")
    dup = df.columns[df.columns.duplicated()].unique().tolist()
    if dup:
        counts = {c: int((df.columns == c).sum()) for c in dup[:10]}
        raise ValueError(f"{where} has duplicate column names: "
                         f"{', '.join(f'{c!r} ({k} columns)' for c, k in counts.items())}. Each column needs its "
                         "own name: rename the copies, or keep only the first of each with "
                         "df = df.loc[:, ~df.columns.duplicated()].")
    complex_columns = [c for c in df.columns if pd.api.types.is_complex_dtype(df[c].dtype)]
    if complex_columns:
        c = complex_columns[0]
        raise ValueError(f"{where} column {c!r} holds complex numbers, which no column type encodes: split it into "
                         f"two number columns, e.g. df['{c}_re'], df['{c}_im'] = df['{c}'].real, df['{c}'].imag, and "
                         f"drop '{c}'.")


def chosen_rows(df: pd.DataFrame, mask, what: str) -> tuple[pd.DataFrame, list[str]]:
    """The rows of ``df`` a ``train_rows`` mask marks, and the decision that says so (none when it
    marks every row); a mask of the wrong length or marking no row is refused."""
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (len(df),) or not mask.any():
        raise ValueError(f"train_rows must be a boolean mask over the {len(df):,} rows of {what} marking at least "
                         f"one row; got {mask.dtype} of shape {mask.shape} marking {int(mask.sum()) if mask.dtype == bool else '?'}")
    if mask.all():
        return df, []
    return df[mask].reset_index(drop=True), [f"trained on {int(mask.sum()):,} of the {len(df):,} rows of {what} "
                                             "(train_rows); the others are encoded, never learned from"]


def small_table_warning(n_rows: int, table: str | None = None) -> str | None:
    """The warning for a table too small to learn much from (None when it is big enough)."""
    if n_rows >= SMALL_TABLE_ROWS:
        return None
    held = ("no rows are held out for validation (that needs at least "
            f"{VALIDATION_ROWS} rows), so there is no validation loss and no early stopping; "
            if n_rows < VALIDATION_ROWS else "")
    return (f"{_where(table)} has only {n_rows} row{'s' if n_rows != 1 else ''}: the space trains, but {held}"
            "the contrastive objective learns by telling each row apart from the others in its batch, and a batch "
            f"is meant to hold at least {SMALL_TABLE_ROWS} rows, so it learns little from so few. A few hundred rows "
            "or more give a useful space.")


def warn(message: str, decisions: list[str] | None = None) -> None:
    """A warning for the caller (Python ``warnings``) and, when given, the fit's decision log."""
    warnings.warn(message, UserWarning, stacklevel=3)
    if decisions is not None:
        decisions.append(f"[WARN] {message}")


# ---------------------------------------------------------------- column values

def check_values(values: pd.Series, column: str, semantic_type: str = "", table: str | None = None) -> None:
    """Refuse cells no encoder can read: ``bytes``, and lists mixed with plain values (a vector column
    may hold a few non-vector tokens: they are missing values there)."""
    if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) in _PLAIN_KINDS:
        return
    where, col = _where(table), f"column '{column}'"
    is_bytes = values.map(lambda v: isinstance(v, _BYTES)).to_numpy(dtype=bool)
    if is_bytes.any():
        i = int(np.flatnonzero(is_bytes)[0])
        raise ValueError(
            f"{col} of {where} holds bytes values ({int(is_bytes.sum()):,} of {len(values):,} rows, e.g. row {i}: "
            f"{_show(values.iloc[i])}), which are not text. Decode them before fitting, e.g. df['{column}'] = "
            f"df['{column}'].map(lambda v: v.decode('utf-8', errors='replace') if isinstance(v, bytes) else v), "
            f"or leave the column out with exclude=('{column}',).")
    if semantic_type == "vector":
        return
    listlike = values.map(lambda v: isinstance(v, _LISTLIKE)).to_numpy(dtype=bool)
    if not listlike.any():
        return
    plain = values.map(_plain).to_numpy(dtype=bool) & ~listlike
    if plain.any():
        i, j = int(np.flatnonzero(listlike)[0]), int(np.flatnonzero(plain)[0])
        kinds = sorted({type(v).__name__ for v in values[listlike]})
        test = ", ".join(f"np.{k}" if k == "ndarray" else k for k in kinds)
        test = test if len(kinds) == 1 else f"({test})"
        raise ValueError(
            f"{col} of {where} mixes lists ({int(listlike.sum()):,} rows, e.g. row {i}: {_show(values.iloc[i])}) "
            f"with plain values ({int(plain.sum()):,} rows, e.g. row {j}: {_show(values.iloc[j])}); no encoder "
            "reads both as one kind of value. To use it as text, join each list into one string before fitting: "
            f"df['{column}'] = df['{column}'].map(lambda v: ', '.join(map(str, v)) if isinstance(v, {test}) "
            f"else v); or leave the column out with exclude=('{column}',).")


def _plain(v) -> bool:
    """A present value that is neither a container nor JSON text."""
    if v is None or isinstance(v, (dict, *_LISTLIKE)):
        return False
    if isinstance(v, str):
        return bool(v.strip()) and v.strip()[:1] not in "[{"
    try:
        return not bool(pd.isna(v))
    except (TypeError, ValueError):
        return True


# ---------------------------------------------------------------- predictor targets

@dataclass
class TargetReading:
    """A target column as the predictor reads it. ``numbers``: float values aligned with the target
    (NaN where missing or not a number) when the values read as numbers, else None. ``unparsed``:
    bool mask of present values that are not numbers in a number target (they count as missing).
    ``note``: the plain-words reason when text values were read as numbers."""

    name: str
    numbers: pd.Series | None
    unparsed: np.ndarray
    note: str = ""

    @property
    def usable(self) -> np.ndarray:
        """Rows with a target value the predictor can learn from."""
        return ~self.unparsed

    def unparsed_warning(self, values: pd.Series) -> str | None:
        if not self.unparsed.any():
            return None
        return (f"{int(self.unparsed.sum()):,} rows of target '{self.name}' hold values that are not numbers: "
                f"{_tokens(values[self.unparsed])}. The target reads as numbers, so they are treated as missing "
                "and left out of training and validation (those rows can still be predicted). To silence this, "
                f"set them to NaN before fitting, e.g. df['{self.name}'] = pd.to_numeric(df['{self.name}'], "
                "errors='coerce').")


def read_target(y: pd.Series) -> TargetReading:
    """Read a target as numbers or not, with the space's type detection for text values."""
    name = str(y.name)
    none = np.zeros(len(y), dtype=bool)
    if pd.api.types.is_bool_dtype(y.dtype) or not (pd.api.types.is_numeric_dtype(y.dtype) or y.dtype == object
                                                   or pd.api.types.is_string_dtype(y.dtype)):
        return TargetReading(name, None, none)
    if pd.api.types.is_numeric_dtype(y.dtype):
        return TargetReading(name, pd.Series(y.to_numpy(dtype="float64", na_value=np.nan), index=y.index), none)
    st, reason, facts = detect_with_facts(y, name)
    if "numeric" not in facts:
        return TargetReading(name, None, none)
    pos = y.reset_index(drop=True)
    present = np.zeros(len(y), dtype=bool)
    present[non_null(pos).index.to_numpy()] = True
    numbers = pd.Series(pd.to_numeric(pos.astype(object), errors="coerce").to_numpy(dtype="float64"), index=y.index)
    unparsed = present & numbers.isna().to_numpy()
    share = 1 - unparsed.sum() / max(int(present.sum()), 1)
    note = f"the space's type detection reads the target as numbers ({share:.0%} of values parse)"
    if unparsed.any():
        note += f"; {_tokens(pos[unparsed])} treated as missing"
    return TargetReading(name, numbers, unparsed, note)


def _tokens(values: pd.Series, k: int = 3) -> str:
    """The most frequent values with their row counts: "'n/a' (18 rows), '-' (2 rows)"."""
    text = values.map(str)
    counts = text.value_counts().head(k)
    more = text.nunique() - len(counts)
    return ", ".join(f"{t!r} ({c:,} row{'s' if c > 1 else ''})" for t, c in counts.items()) + (
        f" and {more} other value(s)" if more > 0 else "")


def check_target(y: pd.Series, reading: TargetReading | None = None) -> TargetReading:
    """Refuse a target nothing can be learned from: no values, ±inf, a single value."""
    r = reading or read_target(y)
    name = r.name
    if r.numbers is not None:
        inf = np.isinf(r.numbers.to_numpy())
        if inf.any():
            raise ValueError(
                f"target '{name}' has {int(inf.sum()):,} infinite value(s) (±inf): a predictor cannot learn from "
                f"them. Replace them before fitting: with NaN to leave those rows out (df['{name}'] = "
                f"df['{name}'].replace([np.inf, -np.inf], np.nan)) or with finite numbers.")
        values = r.numbers.dropna()
    else:
        values = non_null(y)
    if values.empty:
        why = (f"its {int(r.unparsed.sum()):,} values are not numbers" if r.unparsed.any()
               else "every row's value is missing (null, NaN or blank)")
        raise ValueError(f"target '{name}' has no values to learn from: {why}. Fill in '{name}' for the rows "
                         "to train on, or choose another target.")
    try:
        distinct = values.unique()
    except TypeError:
        distinct = values.map(repr).unique()
    if len(distinct) == 1:
        raise ValueError(f"target '{name}' has a single value ({_show(distinct[0])} in all {len(values):,} labelled "
                         "rows): there is nothing to predict. A predictor needs at least two classes (or numbers "
                         "that vary); check the rows given to Predictor.fit, or choose another target.")
    return r


MISSING_MARKERS = frozenset({"n/a", "na", "n.a.", "#n/a", "nan", "null", "none", "-", "--", "?", "unknown",
                             "missing"})


def class_usable(y: pd.Series, reading: TargetReading | None = None) -> np.ndarray:
    """Rows a classification target can learn from: in a target of numbers, text such as 'other' is a
    class of its own; only missing markers ('n/a', 'null', '-', ...) are missing."""
    r = reading or read_target(y)
    if not r.unparsed.any():
        return r.usable
    marker = y.reset_index(drop=True).map(lambda v: isinstance(v, str) and v.strip().lower() in MISSING_MARKERS)
    return ~(r.unparsed & marker.to_numpy(dtype=bool))


def usable_target(y: pd.Series, decisions: list[str] | None = None, as_classes: bool = False) -> pd.Series:
    """The target with the values it cannot use set to missing, warned about (not silent): a number
    target's text (a regression), or only the missing markers among it (``as_classes``)."""
    r = read_target(y)
    if as_classes and r.unparsed.any():
        keep = class_usable(y, r)
        if not keep.all():
            warn(f"{int((~keep).sum()):,} rows of target '{r.name}' hold {_tokens(y.reset_index(drop=True)[~keep])}, "
                 "read as missing values: those rows are left out of training and validation (they can still be "
                 "predicted); the target's other text values are classes of their own.", decisions)
        return y.where(pd.Series(keep, index=y.index))
    message = r.unparsed_warning(y)
    if message:
        warn(message, decisions)
    return y.where(pd.Series(r.usable, index=y.index)) if r.unparsed.any() else y


def target_numbers(y: pd.Series, decisions: list[str] | None = None) -> np.ndarray:
    """A regression target as float64 (NaN where missing or not a number, warned about); a target
    that does not read as numbers is refused with what to do instead."""
    r = read_target(y)
    if r.numbers is None:
        raise ValueError(f"target '{r.name}' is not numeric (dtype {y.dtype}, e.g. "
                         f"{non_null(y).head(3).map(str).tolist()}): regression needs numbers. Use kind='auto' "
                         "or kind='classification', or convert the column with pd.to_numeric first.")
    usable_target(y, decisions)
    return r.numbers.to_numpy(dtype="float64")


__all__ = ["check_table", "check_values", "small_table_warning", "warn", "TargetReading", "read_target",
           "check_target", "usable_target", "class_usable", "target_numbers", "SMALL_TABLE_ROWS", "MISSING_MARKERS"]
