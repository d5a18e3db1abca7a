"""Content-addressed reuse: an unchanged re-run trains nothing; a changed table retrains exactly its
space and what is built on it."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from tests.assets.conftest import materialize, reuse_of

MODELS = {"flights/embedding_space", "planes/embedding_space", "weather/embedding_space", "airports/embedding_space",
          "planes/relational_space", "arr_delay15/predictor", "plane_manufacturer/predictor"}


def _artifact_bytes(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in (home / "artifacts").rglob("model.safetensors")}


def test_an_unchanged_rerun_reuses_every_model(slice_home):
    home = slice_home.parent
    before = _artifact_bytes(home)
    _, result, checks = materialize(slice_home)
    assert result.success and all(c.passed for c in checks.values())
    assert reuse_of(result) == {k: "reused" for k in MODELS}
    assert _artifact_bytes(home) == before  # no artifact was written again
    meta = {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert meta["flights/embedding_space"]["reuse"].value.startswith("reused ")
    assert "by run" in meta["flights/embedding_space"]["reuse"].value
    line = meta["arr_delay15/predictor"]["reuse"].value
    assert line.startswith("reused candidate ") and " by run " in line and line.endswith("; it serves")
    served = json.loads((home / "artifacts" / "nycflights13" / "plane_manufacturer" / "predictor.json").read_text())
    assert served["promotion"]["promoted"] is False and "nothing changed" in served["promotion"]["why"]


def test_a_changed_table_retrains_its_space_and_what_is_built_on_it(slice_home):
    con = duckdb.connect(str(slice_home.parent / "wh.duckdb"))
    con.execute("UPDATE planes SET year = year + 1 WHERE engines = 2")  # the planes' rows change, nothing else
    con.close()
    _, result, _ = materialize(slice_home)
    assert result.success
    retrained = {k for k, how in reuse_of(result).items() if how == "trained"}
    assert retrained == {"planes/embedding_space", "planes/relational_space", "plane_manufacturer/predictor"}
    # the retrained predictor is a candidate: it serves only when no worse on the same held-out rows
    store = slice_home.parent / "artifacts" / "nycflights13" / "plane_manufacturer" / "predictor"
    served = json.loads((store.parent / "predictor.json").read_text())
    promotion, candidate = served["promotion"], served["candidate"]
    assert candidate["reused"] is False
    if promotion["promoted"]:
        assert served["key"] == candidate["key"] and "no worse than" in promotion["why"]
    else:  # worse on the same held-out rows, or failing its quality gate
        assert served["key"] != candidate["key"] and "keeps serving" in promotion["why"]
    assert json.loads((store / "serving.json").read_text())["key"] == served["key"] == promotion["serving"]
