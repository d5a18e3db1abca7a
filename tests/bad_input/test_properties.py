"""Properties that hold for ANY cell values (hypothesis, derandomized: the same examples every run).

* Codecs (scalar, set, boolean, timestamp, vector): ``transform`` never puts NaN or ±inf in a float
  tensor, whatever was fitted and whatever is transformed — NaN, ±inf, ±1e308, subnormals, text,
  None, booleans, lists — and every tensor has one row per value; the column's encoder (the type's
  default, untrained) turns those tensors into finite embeddings.
* Round trips where a codec has one: a set codec's index decodes back to the member text; a scalar
  codec reads a number's text exactly as the number; a timestamp codec reads a datetime's ISO text
  as the same instant; every codec's state survives JSON (``to_config`` → ``from_config``) with
  identical tensors.
* Type detection never raises on a column of mixed values and returns a known type; the profile
  is plain JSON (no NaN / inf).

The real sentence model embeds every text these properties generate (emoji, right-to-left, 5,000
characters, empty), so they hold for what a fitted space really sees.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from featrix_model.columns import default_column_types
from featrix_model.codecs.base import Codec
from featrix_model.codecs.scalar import ScalarCodec
from featrix_model.codecs.set import SetCodec
from featrix_model.codecs.string import column_texts
from featrix_model.codecs.timestamp import TimestampCodec, parse_timestamps
from featrix_model.codecs.vector import VectorCodec
from featrix_model.types import SemanticType, detect_type, profile_column
from featrix_model.codecs.base import expand

ENCODERS = {t: enc for t, (_, enc) in default_column_types().items()}
PROPERTY = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EXTREMES = st.sampled_from([np.nan, np.inf, -np.inf, 1e308, -1e308, 5e-324, -0.0, 0.0, 1e18, -1e18])
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | EXTREMES
TEXT = st.text(max_size=30) | st.sampled_from(["", " ", "n/a", "inf", "-1e400", "😀🎉", "مرحبا", "x" * 5000,
                                                 "2021-03-04", "9999-12-31T23:59:59Z", "0001-01-01", "1e308"])
DATES = st.datetimes(min_value=dt.datetime(1700, 1, 1), max_value=dt.datetime(2200, 12, 31))
CELL = FLOATS | TEXT | st.none() | st.booleans() | st.integers(-10**20, 10**20) | DATES
VECTOR = st.lists(FLOATS, min_size=3, max_size=3)
AWARE = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1),
                     timezones=st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=9))]))
MIXED = (CELL | VECTOR | AWARE | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
         | st.binary(max_size=4) | st.sampled_from([pd.NaT, pd.NA, np.datetime64("NaT"), pd.Timedelta("1D")]))


def column(values: list) -> pd.Series:
    return pd.Series(values, dtype=object)


def assert_finite(out: dict[str, torch.Tensor], n: int, codec: Codec) -> None:
    """Finite codec tensors, one row per value, and finite embeddings from the type's encoder."""
    for key, t in expand(out).items():  # per-distinct tables (codecs.base.per_distinct) gathered per row
        assert t.shape[0] == n, key
        if t.is_floating_point():
            assert torch.isfinite(t).all(), (key, t)
    encoder = ENCODERS[codec.semantic_type](d_model=8, **codec.encoder_kwargs()).eval()
    with torch.no_grad():
        full, short = encoder(out)
    assert torch.isfinite(full).all() and torch.isfinite(short).all()


def assert_state_round_trip(codec: Codec, values: pd.Series) -> None:
    """The codec rebuilt from its JSON config gives the same tensors."""
    config = json.loads(json.dumps(codec.to_config(), allow_nan=False))
    again = type(codec).from_config(config)
    a, b = codec.transform(values), again.transform(values)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- codecs: finite outputs and state round trips


@PROPERTY
@given(fitted=st.lists(FLOATS | TEXT | st.none(), min_size=1, max_size=30),
       seen=st.lists(CELL | VECTOR, max_size=30))
@example(fitted=[-1e308, 1e308, 0.0], seen=[1e308, -1e308, np.inf, "x", None])  # mean ± 2σ overflows
def test_scalar_codec_output_is_finite_for_any_values(fitted, seen):
    codec = ScalarCodec("amount").fit(column(fitted))
    out = codec.transform(column(seen))
    assert_finite(out, len(seen), codec)
    assert (out["binned"] >= 0).all() and all(
        (out["binned"][:, j] < size).all() for j, size in enumerate(codec.bin_sizes()))
    assert_state_round_trip(codec, column(seen))


@PROPERTY
@given(fitted=st.lists(CELL, min_size=1, max_size=20), seen=st.lists(MIXED, max_size=20),
       boolean=st.booleans())
def test_set_codec_output_is_finite_and_its_index_decodes_to_the_member(fitted, seen, boolean):
    codec = SetCodec("c", semantic_type="boolean" if boolean else "set").fit(column(fitted))
    out = codec.transform(column(seen))
    assert_finite(out, len(seen), codec)
    idx = out["idx"].numpy()
    inv, texts = column_texts(column(seen), codec._normalise)
    for i, k in enumerate(idx):  # decode: a known member's index gives back that member's text
        assert (k == 0) == (inv[i] < 0 or texts[inv[i]] not in codec.index_)
        if k:
            assert codec.members_[k - 1] == texts[inv[i]]
    assert_state_round_trip(codec, column(seen))


@PROPERTY
@given(fitted=st.lists(DATES | TEXT | FLOATS | st.none(), min_size=1, max_size=20),
       seen=st.lists(MIXED, max_size=20))
def test_timestamp_codec_output_is_finite_for_any_values(fitted, seen):
    codec = TimestampCodec("when").fit(column(fitted))
    out = codec.transform(column(seen))
    assert_finite(out, len(seen), codec)
    assert_state_round_trip(codec, column(seen))


@PROPERTY
@given(fitted=st.lists(VECTOR, min_size=1, max_size=15), seen=st.lists(VECTOR | CELL, max_size=15))
@example(fitted=[[1e308, 1e308, 1.0], [1e308, -1e308, 2.0]], seen=[[1e308, -1e308, 0.0], [1.0, 2.0, 3.0]])  # sums overflow
def test_vector_codec_output_is_finite_for_any_values(fitted, seen):
    fitted = [[1.0, 2.0, 3.0], *fitted]  # at least one vector of finite numbers to learn the dimension from
    codec = VectorCodec("v").fit(column(fitted))
    out = codec.transform(column(seen))
    assert_finite(out, len(seen), codec)
    assert_state_round_trip(codec, column(seen))


@PROPERTY
@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_a_numbers_text_reads_as_the_number(x):
    codec = ScalarCodec("amount").fit(column([0.0, 1.0, 2.0, 5.0]))
    as_number, as_text = codec.transform(column([x])), codec.transform(column([repr(x)]))
    assert all(torch.equal(as_number[k], as_text[k]) for k in as_number)


@PROPERTY
@given(t=DATES, tz=st.sampled_from([None, dt.timezone.utc, dt.timezone(dt.timedelta(hours=-5, minutes=-30))]))
def test_a_datetimes_iso_text_reads_as_the_same_instant(t, tz):
    t = t.replace(tzinfo=tz)
    utc, offset, bad = parse_timestamps(column([t.isoformat()]))
    expect = pd.Timestamp(t).tz_convert("UTC").tz_localize(None) if tz else pd.Timestamp(t)
    assert not bad[0] and utc.iloc[0] == expect
    assert offset[0] == (t.utcoffset().total_seconds() / 3600 if tz else 0.0)


# ---------------------------------------------------------------- type detection


@PROPERTY
@given(values=st.lists(MIXED, max_size=40), name=st.sampled_from(["", "code", "amount", "user_id"]))
def test_type_detection_never_raises_and_returns_a_known_type(values, name):
    for s in (column(values), pd.Series(values) if values else column([])):
        kind, reason = detect_type(s, name)
        assert isinstance(kind, SemanticType) and isinstance(reason, str) and reason
        profile = profile_column(s, name)
        assert profile.semantic_type == kind
        doc = json.loads(json.dumps(profile.to_dict(), allow_nan=False))  # plain JSON: no NaN / inf anywhere
        assert 0.0 <= doc["null_ratio"] <= 1.0


@PROPERTY
@given(values=st.lists(FLOATS, min_size=1, max_size=40))
def test_infinite_numbers_are_missing_in_every_number_profile(values):
    s = pd.Series(values, dtype="float64")
    p = profile_column(s, "amount")
    finite = np.isfinite(s.to_numpy())
    assert p.null_ratio == round(1 - finite.mean(), 6)
    assert p.stats.get("n_infinite", 0) == int(np.isinf(s.to_numpy()).sum())
