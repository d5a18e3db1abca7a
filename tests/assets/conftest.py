"""A demo slice materialized once per session (every asset trained), and copies of it for tests that
go on from there (re-runs, new rows, drift, schema changes)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from assets.definitions import build_assets, build_resources
from featrix_model import columns
from featrix_pipeline import demo
from featrix_pipeline.spec import load_spec
from featrix_pipeline.topology import Topology
from tests.conftest import DEMO_SPEC, slice_margins, write_spec

BUDGET = "8"  # seconds per space and predictor: short training in tests (tests/conftest.py SLICE_MARGINS)


def materialize(spec_path, selection=None, **kwargs):
    """One real run of the spec's assets (all, or the AssetSelection given); (spec, result, checks)."""
    spec = load_spec(spec_path)
    defs_assets = build_assets(Topology.from_spec(spec))
    result = dg.materialize(defs_assets, resources=build_resources(spec), raise_on_error=False,
                            selection=selection, **kwargs)
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    return spec, result, checks


def reuse_of(result) -> dict[str, str]:
    """{model asset: "trained" | "reused"} from a run's materializations."""
    return {m.asset_key.to_user_string(): m.materialization.metadata["reuse"].value.split()[0]
            for m in result.get_asset_materialization_events() if "reuse" in m.materialization.metadata}


@dataclass
class TrainedSlice:
    home: Path
    spec_path: Path
    result: object
    checks: dict
    profiled: list[str]  # columns the model library profiled itself during the run
    instance: dg.DagsterInstance  # the run's instance: its event log holds the run's log lines


@pytest.fixture(scope="session")
def trained_slice(tmp_path_factory, nyc_frames) -> TrainedSlice:
    """FEATRIX_HOME with the 2-day demo slice and every asset materialized once."""
    home = tmp_path_factory.mktemp("trained_slice")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEATRIX_HOME", str(home))
        mp.setenv("FEATRIX_TIME_BUDGET_S", BUDGET)
        mp.delenv("FEATRIX_LIGHTGBM_MARGIN", raising=False)
        profiled = []
        real = columns.profile_frame
        mp.setattr(columns, "profile_frame", lambda df: profiled.extend(df.columns) or real(df))
        db = home / "wh.duckdb"
        demo.seed(db, frames={k: v.copy() for k, v in nyc_frames.items()})
        spec_path = write_spec(home, db, slice_margins(DEMO_SPEC.read_text()))
        instance = dg.DagsterInstance.ephemeral()
        _, result, checks = materialize(spec_path, instance=instance)
    return TrainedSlice(home, spec_path, result, checks, profiled, instance)


@pytest.fixture()
def slice_home(trained_slice, tmp_path, monkeypatch) -> Path:
    """A private copy of the trained slice (warehouse, artifacts, reports); returns its spec path."""
    home = tmp_path / "home"
    shutil.copytree(trained_slice.home, home)
    monkeypatch.setenv("FEATRIX_HOME", str(home))
    monkeypatch.setenv("FEATRIX_TIME_BUDGET_S", BUDGET)
    monkeypatch.delenv("FEATRIX_LIGHTGBM_MARGIN", raising=False)
    return write_spec(home, home / "wh.duckdb", slice_margins(DEMO_SPEC.read_text()))
