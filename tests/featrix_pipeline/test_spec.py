from __future__ import annotations

import pytest

from featrix_pipeline.spec import SpecError, check_columns, load_spec, parse_spec
from tests.conftest import DEMO_SPEC

GOOD = DEMO_SPEC.read_text()


def test_demo_spec_loads_with_relationships_and_targets():
    spec = load_spec(DEMO_SPEC)
    assert set(spec.tables) == {"flights", "planes", "airlines", "airports", "weather"}
    weather = {r.name: r for r in spec.relationships}["flights_weather"]
    assert (weather.child, weather.parent) == ("flights", "weather")
    assert weather.pairs == (("origin", "origin"), ("time_hour", "time_hour"))
    assert spec.tables["weather"].primary_key == ("origin", "time_hour")
    assert {t.name for t in spec.targets} == {"arr_delay15", "plane_manufacturer"}
    assert "tailnum" in spec.key_columns("flights")


def test_env_var_selects_spec(tmp_path, monkeypatch):
    other = tmp_path / "other.yaml"
    other.write_text(GOOD.replace("name: nycflights13", "name: other_dataset"))
    monkeypatch.setenv("FEATRIX_SPEC", str(other))
    assert load_spec().name == "other_dataset"


def _error(text: str) -> str:
    with pytest.raises(SpecError) as e:
        parse_spec(text, "bad.yaml")
    return str(e.value)


def test_unknown_table_in_join_is_named_with_line():
    msg = _error(GOOD.replace("flights.carrier = airlines.carrier", "flights.carrier = airline.carrier"))
    assert "unknown table 'airline'" in msg and "relationships.1.join" in msg
    line = next(i for i, l in enumerate(GOOD.splitlines(), 1) if "flights.carrier = airlines.carrier" in l)
    assert f"line {line}" in msg


def test_bad_join_sql_is_reported():
    msg = _error(GOOD.replace("flights.tailnum = planes.tailnum", "flights.tailnum = = planes.tailnum"))
    assert "not valid SQL" in msg and "flights.tailnum = = planes.tailnum" in msg
    msg = _error(GOOD.replace("flights.tailnum = planes.tailnum", "flights.tailnum > planes.tailnum"))
    assert "equalities joined by AND" in msg


def test_bad_cardinality_names_field_and_choices():
    msg = _error(GOOD.replace("cardinality: many_to_one", "cardinality: many_to_many", 1))
    assert "relationships.0.cardinality" in msg and "many_to_many" in msg and "one_to_many" in msg


def test_unknown_field_and_missing_primary_key():
    assert "    primary_key: tailnum" in GOOD
    msg = _error(GOOD.replace("    primary_key: tailnum", "    primry_key: tailnum"))
    assert "tables.planes" in msg and "primary_key" in msg


def test_unknown_column_is_named_against_the_warehouse():
    spec = parse_spec(GOOD.replace("flights.tailnum = planes.tailnum", "flights.tail_num = planes.tailnum"), "x.yaml")
    cols = {"flights": ["flight_id", "tailnum", "carrier", "origin", "dest", "time_hour", "arr_delay"],
            "planes": ["tailnum", "manufacturer"], "airlines": ["carrier"], "airports": ["faa", "lat", "lon", "alt"],
            "weather": ["origin", "time_hour", "temp", "dewp", "humid", "wind_speed", "wind_gust", "precip",
                        "pressure", "visib"]}
    with pytest.raises(SpecError) as e:
        check_columns(spec, cols)
    assert "flights.tail_num" in str(e.value) and "tailnum" in str(e.value)
    check_columns(load_spec(DEMO_SPEC), cols)  # the good spec passes


def test_a_bad_schedule_names_its_field():
    zone = _error(GOOD + "\nschedule:\n  cron: '0 6 * * *'\n  timezone: Mars/Olympus_Mons\n")
    assert "field 'schedule.timezone'" in zone and "Mars/Olympus_Mons" in zone and "IANA" in zone
    from assets.schedules import build_schedules
    from featrix_pipeline.topology import Topology

    spec = parse_spec(GOOD + "\nschedule:\n  cron: '61 6 * * *'\n", "bad.yaml")
    with pytest.raises(SpecError, match=r"field 'schedule.cron' '61 6 \* \* \*'"):
        build_schedules(Topology.from_spec(spec), {"refresh_and_score": None})


def test_a_key_given_twice_is_refused_with_both_lines():
    line = next(i for i, l in enumerate(GOOD.splitlines(), 1) if l == "    primary_key: tailnum")
    msg = _error(GOOD.replace("    primary_key: tailnum", "    primary_key: tailnum\n    primary_key: year"))
    assert f"line {line + 1}, field 'tables.planes.primary_key': given twice (first on line {line})" in msg


def test_show_personal_data_is_read_from_the_spec_and_checked_against_the_warehouse():
    from featrix_pipeline.privacy import ALL, allowed_columns

    text = GOOD.replace("    primary_key: tailnum", "    primary_key: tailnum\n    show_personal_data: [manufacturer]")
    spec = parse_spec(text.replace("  airlines:\n", "  airlines:\n    show_personal_data: true\n", 1), "x.yaml")
    assert allowed_columns(spec.tables["planes"]) == {"manufacturer"} and allowed_columns(spec.tables["airlines"]) is ALL
    assert allowed_columns(spec.tables["flights"]) == frozenset()
    with pytest.raises(SpecError, match="show_personal_data names unknown column 'planes.manufactrer'"):
        check_columns(parse_spec(text.replace("[manufacturer]", "[manufactrer]"), "x.yaml"),
                      {"planes": ["tailnum", "manufacturer"]}, only="planes")
