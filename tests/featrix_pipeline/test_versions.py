"""What a predictor version remembers of its rows: the held-out split by key (the same rows in every
version, whatever rows arrive or leave around them) and the labelled rows it saw, so a target shift
is measured on rows it never saw and a retrain for that shift does not ask again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from featrix_pipeline.evaluation import TEST_FRACTION, held_out_split
from featrix_pipeline.monitoring import _target_inputs
from featrix_pipeline.predictors import LABELS, label_hashes, labelled_rows
from featrix_pipeline.spec import load_spec
from featrix_pipeline.targets import target_values
from featrix_pipeline.topology import Topology
from tests.conftest import DEMO_SPEC


def test_the_held_out_rows_stay_held_out_as_rows_arrive_and_leave():
    keys = pd.DataFrame({"flight_id": np.arange(10_000)})
    split = held_out_split(keys, seed=0)
    assert abs(split.mean() - TEST_FRACTION) < 0.02
    later = pd.DataFrame({"flight_id": np.arange(3_000, 14_000)})[::-1]  # old rows gone, new ones, another order
    moved = pd.Series(held_out_split(later, seed=0), index=later["flight_id"])
    assert (moved.sort_index().loc[3_000:9_999].to_numpy() == split[3_000:]).all()
    assert (held_out_split(keys, seed=1) != split).any()  # the seed is part of the split
    composite = pd.DataFrame({"origin": ["EWR", "JFK"] * 500, "hour": np.repeat(np.arange(500), 2)})
    assert 0.1 < held_out_split(composite, seed=0).mean() < 0.3


def test_a_changed_label_is_a_new_labelled_row():
    keys = pd.DataFrame({"k": [1, 2, 3]})
    a, b = label_hashes(keys, [True, False, True]), label_hashes(keys, [True, True, True])
    assert (a == b).tolist() == [True, False, True]
    rows = labelled_rows(keys, pd.Series([True, False, True]), trained_on=True)
    assert list(rows.columns) == ["label", "key_hash", "label_hash", "trained"] and rows["trained"].all()


@pytest.fixture()
def flights_plan():
    return Topology.from_spec(load_spec(DEMO_SPEC))["flights"]


def test_a_target_shift_is_measured_on_labelled_rows_the_version_never_saw(tmp_path, nyc_frames, flights_plan):
    [target] = flights_plan.targets[:1]
    raw = nyc_frames["flights"].reset_index(drop=True)
    labels = target_values(raw, target)
    seen = labelled_rows(raw[["flight_id"]], labels, trained_on=True)
    version = tmp_path / "v1"
    version.mkdir()
    seen.to_parquet(version / LABELS, index=False)
    predictor = {target.name: {"path": str(version), "candidate": {"key": "v1"}}}
    no_new = np.zeros(len(raw), dtype=bool)

    targets, unseen = _target_inputs(flights_plan, raw, predictor, no_new, notes := [])
    assert not unseen.any() and len(targets[target.name][1]) == 0 and notes == []  # asks nothing again

    shifted = raw.copy()
    late = shifted.index[:300]
    shifted.loc[late, "arr_delay"] = 120  # 300 flights' labels arrive late, all delayed
    targets, unseen = _target_inputs(flights_plan, shifted, predictor, no_new, [])
    before, after = targets[target.name]
    assert unseen.sum() == int((labels[late] != True).sum())  # noqa: E712 - only the labels that changed
    assert len(before) == len(raw) and after.astype(bool).all()

    gone = {target.name: {"path": str(tmp_path / "v2"), "candidate": {"key": "v2"}}}
    _target_inputs(flights_plan, raw, gone, no_new, notes := [])
    assert notes and "prior shift not measured" in notes[0]


def test_label_hashes_do_not_depend_on_the_label_dtype():
    keys = pd.DataFrame({"k": [1, 2, 3]})
    plain = label_hashes(keys.iloc[:2], np.array([True, False]))
    nullable = label_hashes(keys, pd.Series([True, False, None], dtype="boolean"))  # a missing label elsewhere
    assert plain.tolist() == nullable.tolist()[:2]


def test_row_embeddings_encode_only_the_new_and_changed_rows(tmp_path, nyc_frames):
    from featrix_model import EmbeddingSpace
    from featrix_pipeline.reuse import ArtifactStore
    from featrix_pipeline.settings import FitSettings
    from featrix_pipeline.spaces import row_embeddings, space_rows, train_space

    plan = Topology.from_spec(load_spec(DEMO_SPEC))["airports"]
    airports = nyc_frames["airports"].reset_index(drop=True)
    settings = FitSettings(time_budget_s=2, seed=0, threads=1)
    summary = train_space(plan, airports, None, ArtifactStore(tmp_path), settings)
    emb = [c for c in row_embeddings(plan, airports.iloc[:1], summary, settings).columns if c.startswith("emb_")]
    same = row_embeddings(plan, airports, summary, settings)
    assert same.attrs["rows_encoded"] == 0  # every row was trained on: its training embedding
    encoded = EmbeddingSpace.load(summary["path"]).encode(space_rows(plan, airports))
    assert np.allclose(same[emb].to_numpy(), encoded, atol=1e-5)
    changed = airports.copy()
    changed.loc[0, "alt"] = changed.loc[0, "alt"] + 5000
    more = pd.concat([changed, airports.iloc[[1]].assign(faa="ZZZ", lat=10.0)], ignore_index=True)
    out = row_embeddings(plan, more, summary, settings)
    assert out.attrs["rows_encoded"] == 2 and len(out) == len(more)
    assert not np.allclose(out.loc[0, emb].to_numpy(float), same.loc[0, emb].to_numpy(float))
    assert (out.loc[1:len(airports) - 1, emb].to_numpy() == same.loc[1:, emb].to_numpy()).all()


def test_a_version_remembers_every_labelled_row_not_only_its_sample(tmp_path, nyc_frames, flights_plan):
    from featrix_pipeline.predictors import _seen_rows
    from featrix_pipeline.topology import Topology as T

    plan = T.from_spec(load_spec(DEMO_SPEC)).targets[0]
    raw = nyc_frames["flights"].reset_index(drop=True)
    sample = raw.iloc[:500]  # what predictor_max_rows let it train on
    seen = _seen_rows(plan, raw, sample)
    labelled = int(target_values(raw, plan.target).notna().sum())
    assert len(seen) == labelled and 0 < seen["trained"].sum() <= 500
    (tmp_path / "v1").mkdir()
    seen.to_parquet(tmp_path / "v1" / LABELS, index=False)
    version = {plan.name: {"path": str(tmp_path / "v1"), "candidate": {"key": "v1"}}}
    targets, unseen = _target_inputs(flights_plan, raw, version, np.zeros(len(raw), dtype=bool), [])
    assert not unseen.any()  # rows sampled out of training are not new rows
    assert len(targets[plan.name][0]) == seen["trained"].sum()  # the training distribution: the trained rows
