"""Real Dagster runs of the data-quality graph on slices of the demo warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from assets.definitions import build_assets, build_definitions, build_resources
from featrix_model import EmbeddingSpace, columns
from featrix_pipeline import demo
from featrix_pipeline.evaluation import held_out_split
from featrix_pipeline.spec import load_spec
from featrix_pipeline.store import STORE
from featrix_pipeline.topology import Topology
from tests.conftest import DEMO_SPEC, write_spec


def run(spec_path, models: bool = True):
    spec = load_spec(spec_path)
    assets = build_assets(Topology.from_spec(spec))
    if not models:  # the data-quality half only
        model_assets = ("embedding_space", "row_embeddings", "relational_space", "predictor", "predictions", "drift")
        assets = [a for a in assets if not any(k.path[-1] in model_assets for k in a.keys)]
    result = dg.materialize(assets, resources=build_resources(spec), raise_on_error=False)
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    return spec, result, checks


def test_definitions_load_from_default_spec(monkeypatch):
    monkeypatch.delenv("FEATRIX_SPEC", raising=False)
    import assets.definitions as d

    defs = build_definitions(load_spec())
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"flights/raw", "flights/profile", "flights/filtered", "flights_weather/join_report"} <= keys
    assert graph.get(dg.AssetKey(["flights_weather", "join_report"])).parent_keys == {
        dg.AssetKey(["flights", "raw"]), dg.AssetKey(["weather", "raw"])}
    assert isinstance(d.defs, dg.Definitions)
    # lineage of the multi-table path: child table → child space (+ its join report) → relational space → predictor
    relational = graph.get(dg.AssetKey(["planes", "relational_space"])).parent_keys
    assert {dg.AssetKey(["flights", "embedding_space"]), dg.AssetKey(["flights", "filtered"]),
            dg.AssetKey(["planes", "filtered"]), dg.AssetKey(["flights_planes", "join_report"])} <= relational
    assert dg.AssetKey(["planes", "relational_space"]) in graph.get(dg.AssetKey(["plane_manufacturer", "predictor"])).parent_keys
    assert dg.AssetKey(["flights", "relational_space"]) not in set(graph.get_all_asset_keys())  # no target sits on flights' parents
    assert {dg.AssetKey(["weather", "filtered"]), dg.AssetKey(["airports", "filtered"])} <= graph.get(
        dg.AssetKey(["flights", "embedding_space"])).parent_keys  # lookups joined into flights' rows
    assert {dg.AssetKey(["flights_dest", "join_report"]), dg.AssetKey(["flights_weather", "join_report"])} <= graph.get(
        dg.AssetKey(["flights", "embedding_space"])).parent_keys  # whose blocking join checks gate the space
    # what dagster dev shows besides the graph: the two jobs, the refresh schedule, the sensors
    assert {j.name for j in defs.jobs} == {"refresh_and_score", "retrain"}
    assert [s.name for s in defs.schedules] == ["refresh_schedule"]
    assert {s.name for s in defs.sensors} == {"drift_sensor", "schema_sensor", "model_automation", "abandoned_runs"}
    refresh = set(defs.resolve_job_def("refresh_and_score").asset_layer.executable_asset_keys)
    assert dg.AssetKey(["arr_delay15", "predictions"]) in refresh and dg.AssetKey(["flights", "drift"]) in refresh
    assert not {k for k in refresh if k.path[-1] in ("embedding_space", "relational_space", "predictor")}


def space_rows_meta(result, table: str) -> str:
    """The row accounting (markdown) of the table's space asset: its relational space when it has one."""
    keys = [dg.AssetKey([table, "relational_space"]), dg.AssetKey([table, "embedding_space"])]
    mats = {m.asset_key: m.materialization.metadata for m in result.get_asset_materialization_events()
            if m.asset_key in keys}
    return str(next(mats[k] for k in keys if k in mats)["row_accounting"].value)


def test_clean_slice_materializes_and_passes_every_check(trained_slice):
    spec, result, checks, tmp_path = load_spec(trained_slice.spec_path), trained_slice.result, trained_slice.checks, \
        trained_slice.home
    profiled = trained_slice.profiled
    failed = {k: e.description for k, e in checks.items() if not e.passed}
    assert failed == {}
    # each table is profiled once: spaces re-profile only columns their table's profile cannot know
    # (lookups such as dest.lat and weather.visib, child aggregates such as flights.count)
    assert profiled and all(c.startswith(("dest.", "weather.", "flights.")) for c in profiled), profiled
    assert ("flights_planes/join_report", "coverage") in checks and ("planes/profile", "primary_key") in checks
    # useless columns: `year` is 2013 in every flight → excluded with its reason; rows unchanged
    filtered = pd.read_parquet(tmp_path / "artifacts" / spec.name / "flights" / "filtered.parquet")
    raw = pd.read_parquet(tmp_path / "artifacts" / spec.name / "flights" / "raw.parquet")
    assert "year" not in filtered.columns and len(filtered) == len(raw)
    assert {"flight_id", "tailnum", "time_hour", "origin"} <= set(filtered.columns)
    mat = [m for m in result.get_asset_materialization_events() if m.asset_key == dg.AssetKey(["flights", "filtered"])][0]
    excluded = mat.materialization.metadata["excluded_columns"].value
    assert "2013" in excluded["year"]
    report = (tmp_path / "reports" / spec.name / "report.md").read_text()
    for rel in spec.relationships:
        assert rel.name in report
    assert (tmp_path / "reports" / spec.name / "report.html").read_text().startswith("<!doctype html>")
    # one embedding space per table (airlines is a lookup: embedding_space: false), embeddings for every row
    done = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert {"flights/embedding_space", "planes/embedding_space", "weather/embedding_space"} <= done
    assert "airlines/embedding_space" not in done
    assert checks[("flights/embedding_space", "no_embedding_collapse")].passed
    emb = pd.read_parquet(tmp_path / "artifacts" / spec.name / "flights" / "row_embeddings.parquet")
    assert len(emb) == len(raw) and list(emb.columns[:2]) == ["flight_id", "emb_0"]
    store = tmp_path / "artifacts" / spec.name
    space = Path(json.loads((store / "flights" / "embedding_space.json").read_text())["path"].replace(STORE, str(store)))
    assert (space / "model.safetensors").exists() and (space / "training_timeline.png").exists()
    space_mat = [m for m in result.get_asset_materialization_events()
                 if m.asset_key == dg.AssetKey(["flights", "embedding_space"])][0].materialization.metadata
    assert "flight_id" in space_mat["excluded_columns"].value and "batch_size" in space_mat["config"].value
    lineage = space_mat["dagster/column_lineage"].value.deps_by_column  # raw → filtered → space, lookups included
    assert lineage["dest.lat"][0].asset_key == dg.AssetKey(["airports", "filtered"]) and lineage["dest.lat"][0].column_name == "lat"
    assert lineage["dep_delay"][0].asset_key == dg.AssetKey(["flights", "filtered"])
    # lookups are denormalised into flights before its space: destination place, weather at the origin
    flights_space = EmbeddingSpace.load(space)
    # (weather.precip is 0 throughout the 2-day slice: weather/filtered drops it as constant, with its reason)
    assert {"dest.lat", "weather.visib", "weather.humid"} <= set(flights_space.plan.all_columns)
    assert "dest.faa" not in flights_space.plan.all_columns  # the lookup key equals the foreign key
    # honest evaluation: no space learned from the rows its table's predictors are measured on
    for table, key in (("flights", "flight_id"), ("planes", "tailnum")):  # planes: its relational space
        held = held_out_split(pd.read_parquet(store / table / "filtered.parquet")[[key]], 0)
        meta = space_rows_meta(result, table)
        assert 0 < held.sum() and f"| used | held out for evaluation | {int(held.sum()):,} |" in meta, (table, meta)
    meta = flights_space.timeline_["metadata"]
    assert meta["n_train_rows"] + meta["n_validation_rows"] == len(filtered) - int(
        held_out_split(filtered[["flight_id"]], 0).sum())
    # the planes' relational space: every plane once, its flights pooled in, orphans and childless planes counted
    assert checks[("planes/relational_space", "no_embedding_collapse")].passed
    rel_meta = [m for m in result.get_asset_materialization_events()
                if m.asset_key == dg.AssetKey(["planes", "relational_space"])][0].materialization.metadata
    assert "flights.children" in rel_meta["columns"].value and "flights.count" in rel_meta["columns"].value
    children = rel_meta["children"].value
    assert "flights.tailnum = planes.tailnum" in children and "unmatched_key" in children
    assert "orphan_rows" in rel_meta["orphans_in_join_reports"].value["flights_planes"]
    # predictors: held-out metrics against LightGBM on the same split, predictions written to the warehouse
    quality = checks[("plane_manufacturer/predictor", "beats_baselines")]
    assert "LightGBM" in quality.description and "accuracy" in quality.description
    delay = checks[("arr_delay15/predictor", "beats_baselines")]  # a real margin, not "beats the majority"
    assert "roc_auc" in delay.description and "trail LightGBM by 10%" in delay.description
    assert "held-out rows that neither the predictor nor its space trained on" in delay.description

    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    scored = con.execute("SELECT * FROM plane_manufacturer_predictions").df()
    con.close()
    assert len(scored) == len(pd.read_parquet(tmp_path / "artifacts" / spec.name / "planes" / "raw.parquet"))
    assert {"tailnum", "prediction", "confidence", "ood_sigma", "run_id", "model_version", "scored_at"} <= set(scored.columns)
    assert scored["run_id"].iloc[0] == result.run_id


@pytest.fixture()
def faulty_warehouse(tmp_path, nyc_frames, monkeypatch):
    """The demo slice with planted faults, and a spec with one mis-declared relationship."""
    monkeypatch.setenv("FEATRIX_HOME", str(tmp_path))
    f = {k: v.copy() for k, v in nyc_frames.items()}
    flights = f["flights"]
    rows = flights.sample(frac=0.12, random_state=0).index
    flights.loc[rows, "carrier"] = "ZZ"  # orphan keys: no airline ZZ
    w = f["weather"]
    w["time_hour"] = w["time_hour"].dt.strftime("%Y-%m-%d %H:%M:%S")  # timestamps stored as text
    planes = f["planes"]
    f["planes"] = pd.concat([planes, planes[planes["tailnum"].isin(["N14228", "N24211"])]], ignore_index=True)
    db = tmp_path / "faulty.duckdb"
    demo.seed(db, frames=f)
    text = DEMO_SPEC.read_text().replace("\ntargets:", (
        "\n  - name: flights_weather_origin\n    join: flights.origin = weather.origin\n"
        "    cardinality: many_to_one\n\ntargets:"))
    return write_spec(tmp_path, db, text)


def test_planted_faults_are_each_caught_by_a_named_check(faulty_warehouse):
    spec, result, checks = run(faulty_warehouse, models=False)
    failed = {k for k, e in checks.items() if not e.passed}

    def examples(key):
        return checks[key].metadata["examples"].value

    # orphan keys
    assert ("flights_airlines/join_report", "coverage") in failed
    assert "ZZ" in examples(("flights_airlines/join_report", "coverage"))
    # type-mismatched keys: TIMESTAMP vs text
    kt = checks[("flights_weather/join_report", "key_types")]
    assert not kt.passed and kt.severity == dg.AssetCheckSeverity.ERROR and "time_hour" in kt.description
    # declared many_to_one that is really many_to_many
    card = checks[("flights_weather_origin/join_report", "cardinality")]
    assert not card.passed and card.severity == dg.AssetCheckSeverity.ERROR
    assert "many_to_many" in card.description or "many-to-many" in card.description
    # duplicate parent keys: caught by the join check and by the planes GX suite
    dup = checks[("flights_planes/join_report", "duplicate_parent_keys")]
    assert not dup.passed and "N14228" in examples(("flights_planes/join_report", "duplicate_parent_keys"))
    pk = checks[("planes/profile", "primary_key")]
    assert not pk.passed and "N14228" in pk.metadata["examples"].value
    # checks that should still pass do
    assert ("flights_origin/join_report", "coverage") not in failed
    # a blocking failure stops what is downstream: planes/filtered is not materialized
    done = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "planes/filtered" not in done and "flights/filtered" in done
    # and the report still covers every relationship, failures included
    report = (load_spec(faulty_warehouse).path.parent / "reports" / spec.name / "report.md").read_text()
    assert "flights_weather_origin" in report and "✗" in report
