"""The dataset's topology from the spec alone (no training): which tables get which model, what
each model reads, and how lookups are joined into rows."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from featrix_pipeline.relational import link_relationships
from featrix_pipeline.spec import load_spec
from featrix_pipeline.topology import Topology
from tests.conftest import DEMO_SPEC, write_spec


@pytest.fixture(scope="module")
def demo() -> Topology:
    return Topology.from_spec(load_spec(DEMO_SPEC))


def test_demo_spec_puts_a_relational_space_on_planes_only(demo):
    # plane_manufacturer sits on planes, whose child is flights; no target sits on airports/weather/airlines
    assert [p.name for p in demo.relational] == ["planes"]
    assert [r.name for r in demo["planes"].children] == ["flights_planes"]
    rel = link_relationships(demo, "planes")[0]
    assert (rel.child, rel.parent, rel.child_keys, rel.name) == ("flights", "planes", ("tailnum",), "")  # the model names links
    assert [r.name for r in demo["flights"].lookups] == ["flights_dest", "flights_weather"]
    assert demo.reads("planes") == ("flights", "airports", "weather")
    assert demo.reads("flights") == ("airports", "weather")


def test_each_target_sits_on_the_space_the_topology_names(demo):
    by_name = {t.name: t for t in demo.targets}
    assert by_name["plane_manufacturer"].space_key == ("planes", "relational_space")
    assert by_name["arr_delay15"].space_key == ("flights", "embedding_space")
    assert not demo["airlines"].has_space and demo["flights"].has_space  # embedding_space: false in the spec


def test_the_plan_is_frozen(demo):
    with pytest.raises(dataclasses.FrozenInstanceError):
        demo["planes"].has_relational_space = False
    with pytest.raises(TypeError):
        demo.tables["planes"] = demo["flights"]


def test_relational_space_can_be_switched_on_and_off_per_table(tmp_path):
    text = DEMO_SPEC.read_text().replace("  weather:\n", "  weather:\n    relational_space: true\n").replace(
        "  planes:\n", "  planes:\n    relational_space: false\n")
    topology = Topology.from_spec(load_spec(write_spec(tmp_path, tmp_path / "wh.duckdb", text)))
    assert [p.name for p in topology.relational] == ["weather"]  # flights are weather's children too
    assert {t.name: t.space_key for t in topology.targets}["plane_manufacturer"] == ("planes", "embedding_space")


def test_lookups_keep_every_row_and_name_columns_by_foreign_key(demo, nyc_frames):
    flights = nyc_frames["flights"]
    out = demo["flights"].model_frame(flights, nyc_frames)
    assert len(out) == len(flights) and (out["flight_id"].to_numpy() == flights["flight_id"].to_numpy()).all()
    assert {"dest.lat", "dest.lon", "dest.alt", "weather.precip", "weather.visib"} <= set(out.columns)
    assert "dest.faa" not in out.columns and "dest.name" not in out.columns  # only the columns the spec lists
    # destinations missing from airports (Puerto Rico, Virgin Islands) keep their rows, with missing places
    pr = out[out["dest"].isin(["BQN", "SJU", "STT", "PSE"])]
    assert len(pr) > 0 and pr["dest.lat"].isna().all()
    assert out.loc[out["dest"] == "LAX", "dest.lat"].round(2).eq(33.94).all()
    tables = demo.model_tables("planes", nyc_frames)
    assert set(tables) == {"planes", "flights"} and "weather.precip" in tables["flights"].columns
    assert isinstance(tables["planes"], pd.DataFrame) and len(tables["planes"]) == len(nyc_frames["planes"])


def test_lookup_column_lists_and_composite_keys(tmp_path, nyc_frames):
    text = DEMO_SPEC.read_text().replace(
        "    lookup: [temp, dewp, humid, wind_speed, wind_gust, precip, pressure, visib]\n", "    lookup: [precip, visib]\n")
    topology = Topology.from_spec(load_spec(write_spec(tmp_path, tmp_path / "wh.duckdb", text)))
    out = topology["flights"].model_frame(nyc_frames["flights"], nyc_frames)
    weather = [c for c in out.columns if c.startswith("weather.")]
    assert weather == ["weather.precip", "weather.visib"]  # composite key: prefixed by the lookup table
    assert out["weather.visib"].notna().mean() > 0.9 and len(out) == len(nyc_frames["flights"])


def test_a_handed_on_profile_plans_the_columns_exactly_as_profiling_again(nyc_frames):
    from featrix_model.columns import plan_columns
    from featrix_pipeline.columns import analysis_of, profile_table

    spec = load_spec(DEMO_SPEC)
    planes = nyc_frames["planes"]
    profile = profile_table(spec, "planes", planes)
    again, handed = plan_columns(planes), plan_columns(planes, analysis=analysis_of(profile, planes.columns))
    assert handed.info == again.info and handed.decisions == again.decisions and handed.columns == again.columns
    with pytest.raises(ValueError, match="was made on .* rows, but the frame has"):
        plan_columns(planes.head(10), analysis=analysis_of(profile, planes.columns))


def test_what_a_retrain_of_one_table_touches(demo):
    planes = set(demo.built_on("planes"))
    assert planes == {("planes", "embedding_space"), ("planes", "row_embeddings"), ("planes", "drift"),
                      ("planes", "relational_space"), ("plane_manufacturer", "predictor"),
                      ("plane_manufacturer", "predictions")}
    flights = set(demo.built_on("flights"))  # a child of planes: the planes' relational space is built on it
    assert {("flights", "embedding_space"), ("planes", "relational_space"), ("arr_delay15", "predictor"),
            ("plane_manufacturer", "predictor")} <= flights and ("planes", "embedding_space") not in flights
    airports = set(demo.affected_by_schema("airports"))  # looked up into flights: flights' models too
    assert {("airports", "raw"), ("flights_dest", "join_report"), ("flights", "embedding_space")} <= airports


def test_model_columns_name_the_table_they_come_from(demo):
    assert demo["flights"].column_source("dest.lat") == ("airports", "lat")
    assert demo["flights"].column_source("weather.visib") == ("weather", "visib")
    assert demo["flights"].column_source("dep_delay") == ("flights", "dep_delay")


def test_a_candidate_serves_only_when_no_worse_and_old_versions_are_pruned(tmp_path):
    from featrix_pipeline.promotion import decide
    from featrix_pipeline.reuse import ArtifactStore

    higher = {"primary_metric": "roc_auc", "higher_is_better": True, "metrics": {"roc_auc": 0.80}}
    assert decide(higher, None) == (True, "first trained version")
    assert decide(higher, {"roc_auc": 0.80})[0] and not decide(higher, {"roc_auc": 0.81})[0]
    lower = {"primary_metric": "rmse", "higher_is_better": False, "metrics": {"rmse": 5.0}}
    assert decide(lower, {"rmse": 6.0})[0] and not decide(lower, {"rmse": 4.0})[0]
    assert "keeps serving" in decide(lower, {"rmse": 4.0})[1]
    failing = {**higher, "metrics": {"roc_auc": 0.99}, "quality_gate": {"passed": False, "why": "trails LightGBM"}}
    assert decide(failing, {"roc_auc": 0.5}) == (False, "the candidate fails its quality gate (trails LightGBM); "
                                                         "the serving version keeps serving")
    assert decide(failing, None)[0]  # nothing else to serve: it serves, and its check says it fails
    assert decide(higher, "the serving version cannot be loaded")[0]
    store = ArtifactStore(tmp_path, retention=2)
    for i, key in enumerate(["a", "b", "c", "d"]):
        tmp = store.start(key)
        (tmp / "figure.png").write_text("png")
        summary = store.publish(key, tmp, {"trained_at": f"2026-01-0{i + 1}", "path": str(tmp),
                                           "figures": {"f": str(tmp / "figure.png")}})
        assert summary["path"] == str(store.folder(key)) and summary["figures"]["f"] == str(store.folder(key) / "figure.png")
        assert store.find(key) == summary and not tmp.exists()
    store.folder("unfinished").mkdir()  # what an old killed run left: never reused, never counted
    assert store.find("unfinished") is None
    late = store.start("a")  # another run finished "a" first: its version stays, this copy is dropped
    (late / "model.safetensors").write_text("other bytes")
    assert store.publish("a", late, {"trained_at": "2026-02-01", "path": str(late)}) == store.find("a")
    assert not late.exists() and not (store.folder("a") / "model.safetensors").exists()
    from featrix_pipeline.reuse import _HOST

    dead = tmp_path / f".training-e-{_HOST}-999999999-0000"  # left by a training process that no longer runs
    dead.mkdir()
    alive = store.start("f")  # this process's: it is still training
    assert store.prune(protect={"a"}) == ["b"]  # the serving version "a" stays although it is the oldest
    assert [k for _, k in store.versions()] == ["a", "c", "d"]
    assert not dead.exists() and alive.exists()
    stale = store.start("unfinished")  # publishing over what an old killed run left replaces it
    assert store.publish("unfinished", stale, {"trained_at": "2026-03-01", "path": str(stale)})["path"] == str(
        store.folder("unfinished"))
    assert store.find("unfinished") is not None
