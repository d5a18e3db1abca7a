"""Incremental scoring: which rows a refresh scores, which it keeps, which it drops."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from featrix_pipeline.scoring import HASH_COLUMN, group_hashes, merged, plan_scoring, row_hashes
from tests.conftest import REPO

KEY = ["flight"]


def flights(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"flight": np.arange(n), "carrier": list("UADB9E"[:n]) + ["AA"] * max(0, n - 6),
                         "dep_delay": np.arange(n) * 7.5 - 5.0, "dest": ["IAH"] * n})


def current_of(table: pd.DataFrame, keys=KEY) -> pd.DataFrame:
    return table[keys].assign(**{HASH_COLUMN: row_hashes(table).to_numpy()})


def score(rows: pd.DataFrame, version: str) -> pd.DataFrame:
    """A stand-in for the predictor: a prediction per row plus the hash and version columns."""
    return rows.assign(prediction=(rows.index.to_numpy() % 2).astype(str), model_version=version)


def first_run(table: pd.DataFrame, version: str = "v1", keys=KEY) -> pd.DataFrame:
    plan = plan_scoring(current_of(table, keys), keys, None, version)
    assert plan.to_score.all() and plan.summary()["new"] == len(table)
    return merged(plan, score(current_of(table, keys), version))


def scored_keys(plan, table: pd.DataFrame, keys=KEY) -> list:
    return [tuple(r) for r in table.loc[plan.to_score, keys].itertuples(index=False)]


def test_unchanged_rows_leave_nothing_to_do():
    table = flights()
    stored = first_run(table)
    plan = plan_scoring(current_of(table), KEY, stored, "v1")
    assert plan.nothing_to_do()
    assert plan.summary() == {"current": 6, "to_score": 0, "new": 0, "changed": 0, "new_model_version": 0,
                              "kept": 6, "removed": 0, "stored": 6, "notes": []}


def test_appended_rows_are_exactly_the_ones_scored():
    stored = first_run(flights(4))
    table = flights(6)
    plan = plan_scoring(current_of(table), KEY, stored, "v1")
    assert scored_keys(plan, table) == [(4,), (5,)]
    assert plan.summary()["new"] == 2 and len(plan.keep) == 4 and not plan.nothing_to_do()


def test_a_changed_value_rescores_that_row_only():
    table = flights()
    stored = first_run(table)
    table.loc[table["flight"] == 3, "dep_delay"] = 99.0
    plan = plan_scoring(current_of(table), KEY, stored, "v1")
    assert scored_keys(plan, table) == [(3,)]
    assert plan.summary()["changed"] == 1 and plan.summary()["kept"] == 5


def test_a_new_model_version_rescores_everything():
    table = flights()
    plan = plan_scoring(current_of(table), KEY, first_run(table), "v2")
    assert plan.to_score.all() and len(plan.keep) == 0
    assert plan.summary()["new_model_version"] == 6 and plan.summary()["changed"] == 0


def test_a_deleted_row_is_removed_and_the_rest_kept():
    table = flights()
    stored = first_run(table)
    table = table[table["flight"] != 2].reset_index(drop=True)
    plan = plan_scoring(current_of(table), KEY, stored, "v1")
    assert plan.removed == 1 and not plan.to_score.any() and not plan.nothing_to_do()
    out = merged(plan, score(current_of(table).iloc[:0], "v1"))
    assert out["flight"].tolist() == [0, 1, 3, 4, 5]


def test_composite_timestamp_keys_match_across_units_and_integer_dtypes():
    keys = ["origin", "time_hour"]
    weather = pd.DataFrame({"origin": ["JFK", "EWR", "JFK", "LGA"],
                            "time_hour": pd.to_datetime(["2013-01-01 05:00", "2013-01-01 05:00",
                                                         "2013-01-01 06:00", "2013-01-01 05:00"]),
                            "visib": [10, 9, 10, 2]})
    stored = first_run(weather, keys=keys)
    # as the warehouse hands them back: another time unit, a nullable integer, object strings
    stored = stored.astype({"time_hour": "datetime64[s]", "origin": object})
    again = weather.astype({"time_hour": "datetime64[ns]", "visib": "Int32"})
    plan = plan_scoring(current_of(again, keys), keys, stored, "v1")
    assert plan.nothing_to_do(), plan.summary()
    again.loc[2, "visib"] = 3  # JFK 06:00 changes; JFK 05:00 (same origin) and EWR 05:00 (same hour) do not
    plan = plan_scoring(current_of(again, keys), keys, stored, "v1")
    assert scored_keys(plan, again, keys) == [("JFK", pd.Timestamp("2013-01-01 06:00"))]


def test_row_order_and_column_order_do_not_change_hashes():
    table = flights()
    h = dict(zip(table["flight"], row_hashes(table)))
    shuffled = table.sample(frac=1.0, random_state=3)[["dest", "dep_delay", "flight", "carrier"]]
    assert dict(zip(shuffled["flight"], row_hashes(shuffled))) == h
    assert len(set(h.values())) == len(h)


def test_hashes_are_the_same_in_another_process():
    table = flights()
    script = ("import numpy as np, pandas as pd; from featrix_pipeline.scoring import row_hashes; "
              "t = pd.DataFrame({'flight': np.arange(6), 'carrier': list('UADB9E'), "
              "'dep_delay': np.arange(6) * 7.5 - 5.0, 'dest': ['IAH'] * 6}); print(*row_hashes(t))")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == row_hashes(table).tolist()


def test_a_null_counts_as_a_value_and_extra_changes_the_hash():
    table = flights()
    base = row_hashes(table)
    nulled = table.copy()
    nulled.loc[1, "dep_delay"] = np.nan
    assert (row_hashes(nulled) != base).tolist() == [False, True, False, False, False, False]
    zero_or_null = pd.DataFrame({"x": [0.0, np.nan, 0.0], "s": ["None", None, "None"],
                                 "n": pd.array([0, None, 0], dtype="Int64")})
    assert row_hashes(zero_or_null).nunique() == 2  # a null is neither 0 nor the text "None"
    for column in zero_or_null:
        assert row_hashes(zero_or_null[[column]]).nunique() == 2
    extra = pd.Series(["a", "b", "c", "d", "e", None])
    with_extra = row_hashes(table, extra)
    assert (with_extra != base).all()
    changed = extra.copy()
    changed[0] = "z"
    assert (row_hashes(table, changed) != with_extra).tolist() == [True, False, False, False, False, False]


def test_group_hashes_follow_children_not_their_order():
    children = pd.DataFrame({"tailnum": ["N1", "N1", "N2", "N2", "N3"], "flight": [1, 2, 3, 4, 5],
                             "dep_delay": [1.0, 2.0, 3.0, 4.0, 5.0]})
    g = group_hashes(children, ["tailnum"]).set_index("tailnum")[HASH_COLUMN]
    assert list(g.index) == ["N1", "N2", "N3"]
    reordered = group_hashes(children.iloc[::-1], ["tailnum"]).set_index("tailnum")[HASH_COLUMN]
    assert reordered.to_dict() == g.to_dict()
    one_changed = children.copy()
    one_changed.loc[3, "dep_delay"] = 40.0
    assert (group_hashes(one_changed, ["tailnum"]).set_index("tailnum")[HASH_COLUMN] != g).tolist() == [False, True, False]
    one_more = pd.concat([children, children.iloc[[0]].assign(flight=9)])
    assert (group_hashes(one_more, ["tailnum"]).set_index("tailnum")[HASH_COLUMN] != g).tolist() == [True, False, False]
    duplicated = pd.concat([children, children.iloc[[4]]])  # a second, identical child: still a change
    assert (group_hashes(duplicated, ["tailnum"]).set_index("tailnum")[HASH_COLUMN] != g).tolist() == [False, False, True]
    twins = pd.concat([children, children.iloc[[4]]], ignore_index=True)  # N3: two identical children ...
    both_changed = twins.assign(dep_delay=np.where(twins["tailnum"] == "N3", 6.0, twins["dep_delay"]))
    changed = group_hashes(both_changed, ["tailnum"])[HASH_COLUMN] != group_hashes(twins, ["tailnum"])[HASH_COLUMN]
    assert changed.tolist() == [False, False, True]  # ... both changed alike
    fewer = children.drop(index=1)
    assert (group_hashes(fewer, ["tailnum"]).set_index("tailnum")[HASH_COLUMN] != g).tolist() == [True, False, False]


def test_a_parents_hash_changes_when_one_child_changes():
    planes = pd.DataFrame({"tailnum": ["N1", "N2"], "seats": [100, 200]})
    children = pd.DataFrame({"tailnum": ["N1", "N2", "N2"], "dep_delay": [1.0, 2.0, 3.0]})

    def parent_hashes(kids):
        extra = planes[["tailnum"]].merge(group_hashes(kids, ["tailnum"]), on="tailnum", how="left")[HASH_COLUMN]
        return row_hashes(planes, extra)

    before = parent_hashes(children)
    kids = children.copy()
    kids.loc[2, "dep_delay"] = 30.0
    assert (parent_hashes(kids) != before).tolist() == [False, True]
    assert (parent_hashes(children[children["tailnum"] == "N2"]) != before).tolist() == [True, False]


def test_merged_is_sorted_with_one_row_per_current_key():
    stored = first_run(flights(5)).sample(frac=1.0, random_state=1)  # stored in any order
    table = flights(8).sample(frac=1.0, random_state=2).reset_index(drop=True)
    table.loc[table["flight"] == 1, "dest"] = "ORD"
    table = table[table["flight"] != 4].reset_index(drop=True)
    plan = plan_scoring(current_of(table), KEY, stored, "v1")
    assert sorted(k for (k,) in scored_keys(plan, table)) == [1, 5, 6, 7]
    assert plan.removed == 1
    new_rows = score(current_of(table)[plan.to_score], "v1")
    out = merged(plan, new_rows)
    assert out["flight"].tolist() == sorted(table["flight"])
    assert list(out.columns) == list(new_rows.columns)
    assert out.set_index("flight").loc[1, HASH_COLUMN] == current_of(table).set_index("flight").loc[1, HASH_COLUMN]
    # the next run finds nothing to do
    assert plan_scoring(current_of(table), KEY, out, "v1").nothing_to_do()
    with pytest.raises(ValueError, match="scored rows"):
        merged(plan, new_rows.iloc[:1])


def test_a_table_stored_before_incremental_runs_is_rescored():
    table = flights()
    legacy = table[KEY].assign(prediction="1", model_version="v1")  # no row_hash column
    plan = plan_scoring(current_of(table), KEY, legacy, "v1")
    assert plan.to_score.all() and plan.summary()["notes"]


def test_null_keys_and_duplicate_stored_keys_do_not_crash():
    table = pd.DataFrame({"k": ["a", None, "c"], "v": [1, 2, 3]})
    stored = first_run(table, keys=["k"])
    stored = pd.concat([stored, stored.iloc[[0]]], ignore_index=True)  # one stored key twice
    plan = plan_scoring(current_of(table, ["k"]), ["k"], stored, "v1")
    assert not plan.to_score.any() and plan.removed == 1 and len(plan.keep) == 3
    assert merged(plan, pd.DataFrame())["k"].tolist()[:2] == ["a", "c"]


def test_plan_and_hashes_find_the_one_changed_row_in_a_year_of_rows():
    n = 336_000
    rng = np.random.default_rng(0)
    weather = pd.DataFrame({"origin": rng.choice(["EWR", "JFK", "LGA"], n),
                            "time_hour": pd.Timestamp("2013-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
                            "temp": rng.normal(size=n), "wind": rng.integers(0, 40, n).astype(float)})
    current = current_of(weather, ["origin", "time_hour"])
    stored = current.assign(prediction="x", model_version="v1")
    weather.loc[7, "temp"] = 1e6
    plan = plan_scoring(current_of(weather, ["origin", "time_hour"]), ["origin", "time_hour"], stored, "v1")
    out = merged(plan, stored.iloc[[7]].assign(row_hash=current_of(weather.iloc[[7]], ["origin", "time_hour"])[HASH_COLUMN]))
    assert int(plan.to_score.sum()) == 1 and bool(plan.to_score[7]) and len(out) == n


def test_a_refresh_through_a_duckdb_warehouse_scores_only_what_changed(tmp_path, nyc_frames):
    """Predictions stored in DuckDB and read back (other dtypes than the frame that was scored:
    TIMESTAMP as datetime64[us], VARCHAR hashes) still match the weather rows they came from."""
    import duckdb

    from featrix_pipeline.warehouse import Warehouse

    keys = ["origin", "time_hour"]
    wh = Warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    wh.write_table("weather", nyc_frames["weather"])
    weather = wh.read_table("weather", order_by=keys)
    assert wh.read_optional("weather_predictions") is None
    wh.write_table("weather_predictions", first_run(weather, keys=keys))

    plan = plan_scoring(current_of(weather, keys), keys, wh.read_optional("weather_predictions"), "v1")
    assert plan.nothing_to_do(), plan.summary()

    con = duckdb.connect(str(wh.location))
    con.execute("UPDATE weather SET visib = visib / 2 WHERE origin = 'LGA' AND time_hour = TIMESTAMP '2013-01-01 08:00:00'")
    con.execute("DELETE FROM weather WHERE origin = 'EWR' AND time_hour = TIMESTAMP '2013-01-01 06:00:00'")
    con.close()
    weather = wh.read_table("weather", order_by=keys)
    plan = plan_scoring(current_of(weather, keys), keys, wh.read_optional("weather_predictions"), "v1")
    assert scored_keys(plan, weather, keys) == [("LGA", pd.Timestamp("2013-01-01 08:00:00"))]
    assert plan.removed == 1
    wh.write_table("weather_predictions", merged(plan, score(current_of(weather, keys)[plan.to_score], "v1")))
    stored = wh.read_optional("weather_predictions")
    assert len(stored) == len(weather)
    assert plan_scoring(current_of(weather, keys), keys, stored, "v1").nothing_to_do()


def test_every_current_row_is_scored_or_kept_and_the_accounting_says_which():
    from featrix_pipeline import accounting
    from featrix_pipeline.predictions import scoring_accounting

    stored = first_run(flights(5))
    table = flights(6)
    table.loc[table["flight"] == 1, "dep_delay"] = 99.0  # one changed, one new, four unchanged
    table = table[table["flight"] != 3].reset_index(drop=True)  # and one removed
    counted = scoring_accounting(len(table), plan_scoring(current_of(table), KEY, stored, "v1").summary(), "t")
    assert counted == {"rows_in": 5, "rows_used": 5, "rows_excluded": 0, "excluded": {},
                       "used": {accounting.SCORED: 2, accounting.ALREADY_SCORED: 3}}


def test_a_row_that_would_vanish_from_the_predictions_table_stops_the_accounting():
    """Two current rows with one key share one stored prediction: the table written back would hold
    one row fewer than the rows scored for; the accounting refuses instead of losing it silently."""
    from featrix_pipeline.accounting import RowAccountingError
    from featrix_pipeline.predictions import scoring_accounting

    table = flights(3)
    twice = pd.concat([table, table.iloc[[0]]], ignore_index=True)
    summary = plan_scoring(current_of(twice), KEY, first_run(table), "v1").summary()
    with pytest.raises(RowAccountingError, match="predictions of 't': 4 rows in, but 3 used"):
        scoring_accounting(len(twice), summary, "t")


def test_two_current_rows_with_one_key_stop_the_scoring_with_the_keys():
    """Two rows share a primary key: each prediction is stored under its key, so scoring refuses with
    the table, the key columns and example keys, instead of an accounting error naming none."""
    from featrix_pipeline.predictions import ScoringRefused, _refuse_duplicate_keys

    current = pd.DataFrame({"id": [1, 1, 2], "row_hash": ["a", "b", "c"]})
    with pytest.raises(ScoringRefused, match=r"table 'orders' has 2 rows whose primary key \(id\) repeats, "
                                             r"e\.g\. \[\{'id': 1\}\].*primary_key check on orders/profile"):
        _refuse_duplicate_keys(current, ["id"], "orders")
    _refuse_duplicate_keys(current.iloc[1:], ["id"], "orders")
