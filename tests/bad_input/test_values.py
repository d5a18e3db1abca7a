"""Bad input: awkward values, through the model library's public API. One space is trained on a
table that holds each awkward kind of value in its own column; each test names one kind and the
outcome it must get (finite embeddings, the same answer for the same values however they are
typed or ordered, unseen values and columns handled at predict time)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from featrix_model import EmbeddingSpace, Predictor

N = 200


@pytest.fixture(scope="module")
def awkward() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    g = rng.integers(0, 3, N)
    hours = pd.Series(pd.date_range("2024-01-01", periods=N, freq="h"))
    mixed_dates = [d.strftime("%Y-%m-%d %H:%M") if i % 3 == 0 else d.strftime("%Y/%m/%d %H:%M:%S") if i % 3 == 1
                   else d.tz_localize("UTC").tz_convert("Europe/Berlin").isoformat() for i, d in enumerate(hours)]
    return pd.DataFrame({
        "x": g * 1.0 + rng.normal(0, 0.3, N),
        "mostly_missing": np.where(rng.random(N) < 0.65, np.nan, g + rng.normal(0, 0.1, N)),
        "script": np.array(["😀 smile", "שלום עולם", "مرحبا", "naïve café"])[g],
        "flag": np.array(["true", "false", "yes"])[g],
        "when": mixed_dates,
        "count": pd.array(np.where(rng.random(N) < 0.2, None, g), dtype="Int64"),
        "code": pd.array(np.array(["a", "b", "c"])[g], dtype="string[pyarrow]"),
        "measure": pd.array(g * 2.0 + rng.normal(0, 0.2, N), dtype="float64[pyarrow]"),
        "extreme": np.where(rng.random(N) < 0.1, np.where(g == 0, np.inf, -np.inf), rng.normal(0, 1e307, N)),
        "huge": ["x" * 1_000_000 if i == 0 else f"note {g[i]} about item {i % 7}" for i in range(N)],
        "label": np.where(g == 2, "yes", "no"),
    })


@pytest.fixture(scope="module")
def space(awkward) -> EmbeddingSpace:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return EmbeddingSpace.fit(awkward.drop(columns=["label"]), seed=0, epochs=3, progress=False, threads=1)


@pytest.fixture(scope="module")
def embedded(space, awkward) -> np.ndarray:
    return space.encode(awkward)


def test_every_awkward_column_is_encoded_to_finite_numbers(space, embedded):
    """Bad input: NaN, ±inf and ±1e307 numbers; 65 % missing; emoji, Hebrew and Arabic text; booleans
    as strings; dates in three formats and two time zones; nullable Int64 and Arrow dtypes; one 1 MB
    string. Outcome: a space over every column, no NaN or inf in any embedding."""
    assert set(space.plan.columns) >= {"x", "mostly_missing", "script", "flag", "when", "count", "code", "measure"}
    assert embedded.shape == (N, space.config.d_model) and np.isfinite(embedded).all()


def test_mixed_date_formats_and_time_zones_are_read_as_times(space):
    """Bad input: one column of dates written three ways, some with a UTC offset. Outcome: one
    timestamp column (not a category per spelling)."""
    assert type(space.plan.codecs["when"]).__name__ == "TimestampCodec"


def test_reordered_columns_give_the_same_embeddings(space, awkward, embedded):
    """Bad input: the same rows with their columns in reverse order. Outcome: identical bytes."""
    assert space.encode(awkward[list(awkward.columns[::-1])]).tobytes() == embedded.tobytes()


@pytest.mark.parametrize("column, retype", [
    ("x", lambda s: s.astype(str)),                       # numbers that arrive as text
    ("count", lambda s: s.astype("float64")),             # Int64 with NA that arrives as float with NaN
    ("code", lambda s: s.astype(object)),                 # Arrow strings that arrive as Python objects
    ("measure", lambda s: s.astype("float64")),           # Arrow float that arrives as numpy
])
def test_a_retyped_column_gives_the_same_embeddings(space, awkward, column, retype):
    """Bad input: a column whose values are the same but whose dtype changed (text for numbers,
    float for a nullable integer, objects for Arrow strings). Outcome: the same embeddings to float
    precision, not unseen values."""
    rows = awkward.head(20)
    again = rows.copy()
    again[column] = retype(again[column])
    assert np.abs(space.encode(again) - space.encode(rows)).max() < 1e-5


def test_unseen_values_and_an_unknown_column_at_predict_time(space, awkward):
    """Bad input: at predict time, categories never seen in training, an extra column and a column
    missing. Outcome: embeddings for every row, finite; the extra column is ignored."""
    rows = awkward.head(10).drop(columns=["flag"]).copy()
    rows["script"] = "unseen ✈️ value"
    rows["code"] = pd.array(["zz"] * 10, dtype="string[pyarrow]")
    rows["not_in_training"] = 1
    out = space.encode(rows)
    assert out.shape == (10, space.config.d_model) and np.isfinite(out).all()


def test_one_row_is_encoded_and_predicted(space, awkward):
    """Bad input: a single row to encode and to predict. Outcome: one embedding, one response."""
    predictor = Predictor.fit(space, awkward, target="label", seed=0, epochs=3, threads=1)
    assert space.encode(awkward.head(1)).shape == (1, space.config.d_model)
    (response,) = predictor.predict(awkward.drop(columns=["label"]).iloc[0].to_dict(), explain=False)
    assert response["prediction"] in ("yes", "no")
    frame = predictor.predict_frame(awkward.drop(columns=["label"]).head(3), explain=False)
    assert len(frame) == 3 and frame["prediction"].isin(["yes", "no"]).all()
