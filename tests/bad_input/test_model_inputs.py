"""Bad input: tables, column values and predictor targets the modelling library is handed.
Each test names one kind of bad input and the outcome it must get: a clear error that names the
table / column / target and says what to do (never a traceback from deep inside numpy, pandas,
scikit-learn or torch), or, where stated, a warning. Fits are tiny (a few dozen rows, one epoch)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model import EmbeddingSpace
from featrix_model.columns import default_column_types, plan_columns
from featrix_model.predictor import Predictor
from featrix_model.types import SemanticType, profile_column

torch.set_num_threads(1)
N = 60


def numbers(n: int = N, seed: int = 0) -> pd.DataFrame:
    """Two related number columns: no text, so no sentence model is loaded where none is needed."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "x2": 2 * x + 0.3 * rng.normal(size=n)})


def fit(df: pd.DataFrame, **kw) -> EmbeddingSpace:
    return EmbeddingSpace.fit(df, seed=0, progress=False, epochs=1, **kw)


@pytest.fixture(scope="module")
def space() -> EmbeddingSpace:
    return fit(numbers())


def predictor(space, y, **kw) -> Predictor:
    df = numbers().assign(y=y)
    return Predictor.fit(space, df, target="y", epochs=1, n_hidden_layers=1, **kw)


# ---------------------------------------------------------------- tables


def test_duplicate_column_names_are_refused_naming_the_column():
    """Bad input: a frame with two columns named 'x'. Outcome: ValueError naming 'x' and how many
    columns share it, with the pandas line that keeps the first of each."""
    df = pd.concat([numbers(), numbers()[["x"]]], axis=1)
    with pytest.raises(ValueError, match=r"duplicate column names: 'x' \(2 columns\)") as e:
        fit(df)
    assert "df.loc[:, ~df.columns.duplicated()]" in str(e.value)


def test_integer_column_names_are_refused_with_the_rename_to_make():
    """Bad input: integer column names (0, 1). Outcome: refused, not renamed silently (columns are
    found by name later), with the rename to make: df.columns = df.columns.astype(str)."""
    df = numbers()
    df.columns = [0, 1]
    with pytest.raises(ValueError, match=r"not strings: \[0, 1\] \(int\)") as e:
        fit(df)
    assert "df.columns = df.columns.astype(str)" in str(e.value) and "not renamed" in str(e.value)


def test_a_complex_number_column_is_refused_with_how_to_split_it():
    """Bad input: a column of complex numbers. Outcome: a ValueError naming the column and the two
    lines that split it into real and imaginary parts (not numpy's ufunc error from deep inside)."""
    df = pd.DataFrame({"a": np.linspace(0, 1, 40), "z": np.arange(40) * (1 + 1j), "b": ["x", "y"] * 20})
    with pytest.raises(ValueError, match=r"column 'z' holds complex numbers.*df\['z'\]\.real"):
        EmbeddingSpace.fit(df, epochs=1, progress=False)


def test_a_zero_row_table_is_refused():
    """Bad input: a table with columns but no rows. Outcome: ValueError; the column plan says the
    table has no rows and what to check."""
    empty = numbers().iloc[:0]
    with pytest.raises(ValueError):
        fit(empty)
    with pytest.raises(ValueError, match=r"table 'orders' has no rows .*Check the query or filter"):
        plan_columns(empty, table="orders")


def test_a_two_row_table_trains_with_a_warning_saying_how_many_rows_are_needed():
    """Bad input: a two-row table. Outcome: the space trains, with a UserWarning (also a [WARN]
    decision) that says 20 rows are needed for validation and that a batch is at least 32 rows."""
    with pytest.warns(UserWarning, match=r"only 2 rows.*at least 20 rows.*at least 32 rows"):
        es = fit(numbers(2))
    assert any(d.startswith("[WARN]") and "only 2 rows" in d for d in es.decisions)
    assert np.isfinite(es.encode(numbers(2))).all()


# ---------------------------------------------------------------- column values


def test_bytes_values_are_refused_with_how_to_decode_them():
    """Bad input: a column of ``bytes`` values. Outcome: ValueError naming the column and a row,
    with the decode to apply (or exclude=)."""
    df = numbers().assign(raw=[f"v{i % 3}".encode() for i in range(N)])
    with pytest.raises(ValueError, match=r"column 'raw' of the table holds bytes values .*row 0: b'v0'") as e:
        fit(df)
    assert ".decode('utf-8'" in str(e.value) and "exclude=('raw',)" in str(e.value)
    assert isinstance(fit(df, exclude=("raw",)), EmbeddingSpace)  # the way out the message offers


def test_a_column_mixing_lists_and_strings_is_refused_with_how_to_join_them():
    """Bad input: a column holding lists in some rows and plain strings in others. Outcome:
    ValueError naming the column, a row of each kind and the exact line that turns it into text;
    applying that line makes the table fit."""
    tags = [["red", "blue"] if i % 2 else "green" for i in range(N)]
    df = numbers().assign(tags=tags)
    with pytest.raises(ValueError, match=r"column 'tags' .*mixes lists .*row 1: \['red', 'blue'\].*row 0: 'green'") as e:
        fit(df)
    msg = str(e.value)
    line = msg[msg.index("df['tags'] = "):msg.index("; or leave")]
    exec(line, {"df": df})  # the fix, exactly as the message writes it
    assert isinstance(fit(df), EmbeddingSpace)


def test_a_list_column_json_cannot_read_says_exactly_how_to_read_it_as_text():
    """Bad input: a column of lists of words (read as JSON, but a list has no keys to flatten).
    Outcome: ValueError with the column_types override that reads JSON columns as text; passing
    it makes the table fit."""
    df = numbers(42).assign(tags=[["red", "blue"], ["green"], ["blue"]] * 14)
    with pytest.raises(ValueError, match=r"JSON column 'tags' flattens to 1 key\(s\) \(its values are lists") as e:
        fit(df)
    assert "column_types={**default_column_types(), 'json': default_column_types()['string']}" in str(e.value)
    types = default_column_types()
    es = fit(df, column_types={**types, "json": types["string"]})
    assert es.plan.info["tags"]["semantic_type"] == "json" and "tags" in es.plan.columns


def test_infinite_values_count_as_missing_in_the_profile():
    """Bad input: a number column with ±inf. Outcome: its profile counts them as missing (null
    ratio), says so in the type reason and stats, and the stats are finite."""
    p = profile_column(pd.Series([1.0, np.inf, -np.inf, 2.0, np.nan, 3.0]), "amount")
    assert p.semantic_type == SemanticType.SCALAR and p.null_ratio == 0.5
    assert "2 ±inf value(s) counted as missing" in p.type_reason and p.stats["n_infinite"] == 2
    assert p.stats["max"] == 3.0 and np.isfinite(p.stats["mean"])
    text = profile_column(pd.Series(["1", "inf", "2", "3"]), "amount")
    assert text.null_ratio == 0.25 and text.stats["n_infinite"] == 1


def test_extreme_and_odd_values_give_finite_codec_encoder_and_embedding_outputs():
    """Bad input: NaN, ±inf, ±1e308, empty strings, a 20,000-character string, emoji, right-to-left
    text, a column mixing numbers with text and vectors holding ±1e308. Outcome: the space fits; every
    codec tensor, every column encoder's output and every row embedding is finite."""
    odd_numbers = [np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0, 5e-324, 1.5]
    odd_text = ["", "x" * 20_000, "😀🎉🚀", "مرحبا بالعالم", "שלום", "plain", None, " "]
    mixed = [1, "two", 3.5, None, "4", True, -1e308, "n/a"]
    vectors = [[1e308, 1.0], [1e308, 2.0], [np.nan, 1.0], [np.inf, 0.0], [1.0, 2.0], [0.5, 1e-300], None, [3.0, 4.0]]
    df = pd.DataFrame({"amount": odd_numbers * 4, "note": odd_text * 4, "mixed": mixed * 4, "vec": vectors * 4,
                       "x": np.arange(32.0)})
    es = fit(df)
    assert es.plan.info["vec"]["semantic_type"] == "vector" and "vec" in es.plan.columns
    batch = es.plan.transform(df)
    for col, tensors in batch.items():
        for key, t in tensors.items():
            assert not t.is_floating_point() or torch.isfinite(t).all(), (col, key)
    es.net.eval()
    with torch.no_grad():
        for col, enc in zip(es.plan.columns, es.net.encoders):
            full, short = enc(batch[col])
            assert torch.isfinite(full).all() and torch.isfinite(short).all(), col
    assert np.isfinite(es.encode(df)).all() and np.isfinite(es.encode_short(df)).all()


# ---------------------------------------------------------------- predictor targets


def test_an_all_null_target_is_refused(space):
    """Bad input: a target that is null in every row. Outcome: ValueError naming the target and
    saying to fill it in or choose another — not an error from scikit-learn."""
    with pytest.raises(ValueError, match=r"target 'y' has no values to learn from: every row's value is missing"):
        predictor(space, np.nan)


def test_a_single_class_target_is_refused(space):
    """Bad input: a target with one value in every row. Outcome: ValueError naming the target and
    the value, saying a predictor needs at least two classes."""
    with pytest.raises(ValueError, match=r"target 'y' has a single value \('yes' in all 60 labelled rows\).*two classes"):
        predictor(space, "yes")


def test_an_infinite_target_is_refused(space):
    """Bad input: a number target with ±inf in some rows. Outcome: ValueError naming the target and
    the count, with the replace() that turns them into NaN (rows then left out)."""
    y = np.where(np.arange(N) % 10 == 0, np.inf, np.arange(N, dtype=float))
    y[5] = -np.inf
    with pytest.raises(ValueError, match=r"target 'y' has 7 infinite value\(s\) \(±inf\)") as e:
        predictor(space, y)
    assert "df['y'].replace([np.inf, -np.inf], np.nan)" in str(e.value)


def test_a_number_target_with_na_strings_is_regression_and_the_na_rows_are_reported(space):
    """Bad input: a number target stored as text with 10 % "n/a" (once a 50-class classifier).
    Outcome: regression, detected by the space's type detection with the reason in the decision;
    the "n/a" rows are missing — warned about, and neither trained nor validated."""
    rng = np.random.default_rng(1)
    y = [f"{v:.3f}" if i % 10 else "n/a" for i, v in enumerate(rng.normal(size=N))]
    with pytest.warns(UserWarning, match=r"6 rows of target 'y' hold values that are not numbers: 'n/a' \(6 rows\)"):
        p = predictor(space, y)
    assert p.task_.kind == "regression"
    kind = next(d for d in p.decisions_ if d.startswith("kind:"))
    assert "reads the target as numbers (90% of values parse)" in kind and "'n/a' (6 rows) treated as missing" in kind
    assert any(d.startswith("[WARN] 6 rows of target 'y'") for d in p.decisions_)
    split = next(d for d in p.decisions_ if d.startswith("split:"))
    assert "43 training / 11 validation rows" in split  # 54 = 60 rows less the 6 "n/a"
    assert np.isfinite(p.predict_frame(numbers())["prediction"].to_numpy(float)).all()
