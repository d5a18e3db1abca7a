"""Which tables get relational spaces and lookups, from the dataset spec alone (no training)."""

from __future__ import annotations

import pandas as pd

from featrix_pipeline.relational import (child_tables, lookups, model_frame, model_relationships, relational_parents,
                                         relational_tables, with_lookup_tables)
from featrix_pipeline.spec import load_spec
from tests.conftest import DEMO_SPEC, write_spec


def test_demo_spec_puts_a_relational_space_on_planes_only():
    spec = load_spec(DEMO_SPEC)
    # plane_manufacturer sits on planes, whose child is flights; no target sits on airports/weather/airlines
    assert {p: [r.name for r in rels] for p, rels in relational_parents(spec).items()} == {"planes": ["flights_planes"]}
    rel = model_relationships(spec, "planes")[0]
    assert (rel.child, rel.parent, rel.child_cols, rel.name) == ("flights", "planes", ["tailnum"], "flights")
    assert [r.name for r in lookups(spec, "flights")] == ["flights_dest", "flights_weather"]
    assert with_lookup_tables(spec, ["planes", *child_tables(spec, "planes")]) == ["planes", "flights", "airports", "weather"]


def test_relational_space_can_be_switched_on_and_off_per_table(tmp_path):
    text = DEMO_SPEC.read_text().replace("  weather:\n", "  weather:\n    relational_space: true\n").replace(
        "  planes:\n", "  planes:\n    relational_space: false\n")
    spec = load_spec(write_spec(tmp_path, tmp_path / "wh.duckdb", text))
    assert set(relational_parents(spec)) == {"weather"}  # flights are weather's children too


def test_lookups_keep_every_row_and_name_columns_by_foreign_key(nyc_frames):
    spec = load_spec(DEMO_SPEC)
    flights = nyc_frames["flights"]
    out = model_frame(spec, "flights", flights, nyc_frames)
    assert len(out) == len(flights) and (out["flight_id"].to_numpy() == flights["flight_id"].to_numpy()).all()
    assert {"dest.lat", "dest.lon", "dest.alt", "weather.precip", "weather.visib"} <= set(out.columns)
    assert "dest.faa" not in out.columns and "dest.name" not in out.columns  # only the columns the spec lists
    # destinations missing from airports (Puerto Rico, Virgin Islands) keep their rows, with missing places
    pr = out[out["dest"].isin(["BQN", "SJU", "STT", "PSE"])]
    assert len(pr) > 0 and pr["dest.lat"].isna().all()
    assert out.loc[out["dest"] == "LAX", "dest.lat"].round(2).eq(33.94).all()
    tables = relational_tables(spec, "planes", nyc_frames)
    assert set(tables) == {"planes", "flights"} and "weather.precip" in tables["flights"].columns
    assert isinstance(tables["planes"], pd.DataFrame) and len(tables["planes"]) == len(nyc_frames["planes"])


def test_lookup_column_lists_and_composite_keys(tmp_path, nyc_frames):
    text = DEMO_SPEC.read_text().replace(
        "    lookup: [temp, dewp, humid, wind_speed, wind_gust, precip, pressure, visib]\n", "    lookup: [precip, visib]\n")
    spec = load_spec(write_spec(tmp_path, tmp_path / "wh.duckdb", text))
    out = model_frame(spec, "flights", nyc_frames["flights"], nyc_frames)
    weather = [c for c in out.columns if c.startswith("weather.")]
    assert weather == ["weather.precip", "weather.visib"]  # composite key: prefixed by the lookup table
    assert out["weather.visib"].notna().mean() > 0.9 and len(out) == len(nyc_frames["flights"])
