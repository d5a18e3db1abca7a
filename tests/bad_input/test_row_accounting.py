"""Bad input: rows a model step would lose silently, children that find no
parent, a target that hands the predictor its own answer, an input column known only after the
outcome. Each test names one kind of bad input and the outcome it must get: counted with a reason,
warned of with the evidence, hidden, or flagged.

The tables are small synthetic ones (400 customers, 240 orders) and every model trains for about a
second: one table space serves both predictors, each predictor is fitted once per module."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from featrix_model.leakage import leaky_columns
from featrix_pipeline import accounting
from featrix_pipeline.predictors import hidden_features, training_frame, train_predictor
from featrix_pipeline.relational import all_orphans_warning, key_match, train_relational_space
from featrix_pipeline.reuse import ArtifactStore
from featrix_pipeline.settings import FitSettings
from featrix_pipeline.spaces import train_space
from featrix_pipeline.spec import parse_spec
from featrix_pipeline.topology import Topology

SETTINGS = FitSettings(time_budget_s=1, seed=0, threads=1)
N, UNLABELLED = 400, 40
SPEC = """
name: shop
warehouse:
  url: duckdb:///unused.duckdb
tables:
  customers:
    primary_key: customer_id
    relational_space: {relational}
  orders:
    primary_key: order_id
relationships:
  - name: orders_customers
    join: orders.customer_id = customers.customer_id
    cardinality: many_to_one
targets:
  - name: churn
    table: customers
    column: churn_flag
    expression: churned = 1
    kind: classification
    positive_label: true
    exclude_features: {exclude}
"""


def topology(exclude: list[str], relational: bool = False) -> Topology:
    return Topology.from_spec(parse_spec(SPEC.format(exclude=exclude, relational=str(relational).lower())))


def customers() -> pd.DataFrame:
    """400 customers: churn depends weakly on spend; ``cancel_reason`` is recorded only once a customer
    has churned (a planted leak); 40 customers have no ``churned`` value yet (no label)."""
    rng = np.random.default_rng(0)
    spend = rng.normal(50, 15, N)
    churned = (rng.random(N) < 1 / (1 + np.exp((spend - 50) / 10))).astype(float)
    df = pd.DataFrame({"customer_id": [f"C{i:03d}" for i in range(N)], "age": rng.integers(18, 80, N),
                       "plan": rng.choice(["basic", "plus", "pro"], N), "spend": spend.round(2), "churned": churned,
                       "cancel_reason": np.where(churned == 1, rng.choice(["price", "service", "moved"], N), "none")})
    df.loc[rng.choice(N, UNLABELLED, replace=False), "churned"] = np.nan
    return df


def orders(pad: str = "  ") -> pd.DataFrame:
    """240 orders pointing at the first 60 customers, their keys written with ``pad`` after them."""
    rng = np.random.default_rng(1)
    return pd.DataFrame({"order_id": np.arange(240), "customer_id": [f"C{i:03d}{pad}" for i in rng.integers(0, 60, 240)],
                         "amount": rng.gamma(2, 20, 240).round(2), "channel": rng.choice(["web", "store"], 240)})


@dataclass
class Trained:
    frame: pd.DataFrame
    clean: dict  # the predictor with the leaky column listed in exclude_features
    leaky: dict  # the same target with the leaky column left in


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("row_accounting")
    df = customers()
    clean_topology, leaky_topology = topology(["cancel_reason"]), topology([])
    space = train_space(clean_topology["customers"], df, None, ArtifactStore(root / "space"), SETTINGS)

    def predictor(topo: Topology, name: str) -> dict:
        return train_predictor(topo, topo.targets[0], df, df, space, ArtifactStore(root / name), SETTINGS)

    return Trained(df, predictor(clean_topology, "clean"), predictor(leaky_topology, "leaky"))


def test_rows_without_a_target_value_are_counted_as_excluded_with_their_reason(trained):
    """Bad input: 40 of 400 customers have no ``churned`` value. Outcome: the predictor's summary (and
    the candidate the asset reports) counts them as excluded for "no target value", the rows used are
    split into training and held-out rows, and rows in = used + excluded exactly; a sample cut by
    predictor_max_rows is counted the same way, among the labelled rows only."""
    for counted in (trained.clean["row_accounting"], trained.clean["candidate"]["row_accounting"]):
        assert counted["rows_in"] == N and counted["excluded"] == {accounting.NO_TARGET: UNLABELLED}
        assert counted["rows_used"] == N - UNLABELLED == trained.clean["rows_train"] + trained.clean["rows_test"]
        assert counted["used"] == {accounting.USED_FOR_TRAINING: trained.clean["rows_train"],
                                   accounting.HELD_OUT_FOR_EVALUATION: trained.clean["rows_test"]}
        assert counted["rows_in"] == counted["rows_used"] + counted["rows_excluded"]
    assert any(n.startswith("[WARN] 40 of 400 rows have no value for 'churn'") for n in trained.clean["notes"])

    plan = topology(["cancel_reason"]).targets[0]
    rows, _, excluded = training_frame(plan, trained.frame, trained.frame, 200, seed=0)
    assert len(rows) == 200 and rows["churn_flag"].notna().all()
    assert excluded == {accounting.NO_TARGET: UNLABELLED, accounting.SAMPLED_OUT_PREDICTOR: N - UNLABELLED - 200}
    with pytest.raises(accounting.RowAccountingError, match="400 rows in, but 350 used .* = 390"):
        accounting.account(N, {accounting.USED_FOR_TRAINING: 350}, {accounting.NO_TARGET: UNLABELLED})


def test_an_expression_target_hides_every_column_it_reads(trained):
    """Bad input: the target is ``churned = 1`` and ``churned`` is an ordinary column of the table.
    Outcome: ``churned`` is hidden from the predictor (and from LightGBM), the notes say why, and the
    held-out AUC is an honest one, not ~1.0."""
    s = trained.clean
    assert "churned" in s["hidden"] and "churned" not in s["features"]
    assert s["hidden_why"]["churned"] == "read by the target expression 'churned = 1'"
    assert any(n.startswith("hidden from the predictor: ['churned'] (read by the target expression")
               for n in s["notes"]), s["notes"]
    assert hidden_features(topology([]).targets[0]) == ("churned", "customer_id")
    assert s["metrics"]["roc_auc"] < 0.95 and s["lightgbm"]["roc_auc"] < 0.95, (s["metrics"], s["lightgbm"])


def test_a_planted_leaky_column_is_warned_of_and_a_clean_table_is_not(trained):
    """Bad input: ``cancel_reason`` is filled in only once a customer has churned. Outcome: with it among
    the predictor's inputs, a "possible leakage" warning names it with its held-out AUC and what to
    do; with it listed in exclude_features (a clean table), no leakage is reported. The check itself
    also finds a numeric leak of a regression target and leaves an id column alone."""
    leaky, clean = trained.leaky, trained.clean
    assert [d["column"] for d in leaky["leakage"]] == ["cancel_reason"] and leaky["leakage"][0]["score"] >= 0.99
    assert leaky["candidate"]["leakage"] == leaky["leakage"]
    warning = next(n for n in leaky["notes"] if "possible leakage" in n)
    assert warning.startswith("[WARN] possible leakage: column 'cancel_reason' alone predicts 'churn' with AUC 1.000 "
                              "on held-out rows") and "exclude_features" in warning
    assert clean["leakage"] == [] and not any("possible leakage" in n for n in clean["notes"])

    rng = np.random.default_rng(2)
    x = rng.lognormal(2, 1.5, 5000)
    frame = pd.DataFrame({"id": np.arange(5000).astype(str), "noise": rng.normal(size=5000), "x": x})
    found = leaky_columns(frame, 3 * x + 1, "regression", seed=0)
    assert [(d["column"], d["metric"]) for d in found] == [("x", "r2")]
    assert leaky_columns(frame.drop(columns="x"), 3 * x + 1, "regression", seed=0) == []
    assert leaky_columns(frame, frame["id"], "classification", seed=0) == []  # an id predicts only itself


def test_a_relational_space_whose_children_all_miss_their_parent_warns_with_example_keys(tmp_path):
    """Bad input: every order's customer key carries trailing spaces (``'C017  '`` vs ``'C017'``), so
    no order finds its customer. Outcome: the relational space's summary warns (also first among its
    decisions), naming the relationship, the child table and the key columns, with example keys of
    both sides that show the padding and what to do; its child rows are all counted as orphans. The
    same orders with clean keys, or keys of another type, are judged by the same check."""
    topo = topology([], relational=True)
    kids, people = orders(), customers()
    child = train_space(topo["orders"], kids, None, ArtifactStore(tmp_path / "orders"), SETTINGS)
    s = train_relational_space(topo, "customers", {"customers": people, "orders": kids}, {"orders": child},
                               ArtifactStore(tmp_path / "rel"), SETTINGS)
    [warning] = s["warnings"]
    assert warning.startswith("[WARN] relationship 'orders_customers' (orders.customer_id = customers.customer_id): "
                              "none of the 240 'orders' rows with a key finds a 'customers' row"), warning
    shown = s["orphans"]["orders_customers"]["example_child_keys"]
    assert len(shown) == 5 and all(re.fullmatch(r"'C\d{3}  '", k) for k in shown), shown  # the padding shows
    assert f"Child keys ['customer_id'] (string (str)), e.g. {shown[0]}" in warning and "e.g. 'C000', 'C001'" in warning
    assert "without surrounding spaces" in warning and "then retrain" in warning
    assert s["decisions"][0] == warning and s["orphans"]["orders_customers"]["orphans"] == 240
    assert s["child_row_accounting"]["orders"]["excluded"] == {accounting.CHILD_NO_PARENT: 240}
    assert s["row_accounting"]["rows_in"] == N and s["row_accounting"]["rows_excluded"] == 0

    rel = topo["customers"].children[0]
    assert all_orphans_warning(rel, key_match(orders(pad=""), people, rel)) is None  # clean keys: no warning
    as_numbers = orders(pad="").assign(customer_id=lambda d: d["customer_id"].str[1:].astype(int) + 1000)
    typed = all_orphans_warning(rel, key_match(as_numbers, people, rel))
    assert "The key types differ: ['integer (int64)'] vs ['string (str)']" in typed, typed
    assert re.search(r"\(integer \(int64\)\), e\.g\. 10\d\d, ", typed), typed  # numbers, not quoted


def test_the_model_assets_show_where_every_row_went_in_their_metadata(tmp_path, monkeypatch):
    """Bad input: the same 40 unlabelled customers and leaky ``cancel_reason``, through a real Dagster run
    of the whole graph. Outcome: every asset that trains or scores (both table spaces, the relational
    space, row embeddings, predictor, predictions) shows ``rows_in`` = ``rows_used`` + ``rows_excluded``
    and the table of uses and reasons; the predictor's metadata names the excluded unlabelled rows,
    the hidden ``churned`` and the leaky column."""
    import dagster as dg

    from assets.definitions import build_assets, build_resources
    from featrix_pipeline import demo
    from featrix_pipeline.spec import load_spec

    monkeypatch.setenv("FEATRIX_HOME", str(tmp_path))
    monkeypatch.setenv("FEATRIX_TIME_BUDGET_S", "1")
    db = tmp_path / "wh.duckdb"
    demo.seed(db, frames={"customers": customers(), "orders": orders(pad="")})
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC.format(exclude=[], relational="true").replace("duckdb:///unused.duckdb", f"duckdb:///{db}"))
    spec = load_spec(spec_path)
    result = dg.materialize(build_assets(Topology.from_spec(spec)), resources=build_resources(spec), raise_on_error=False)
    meta = {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    counted = {k: (m["rows_in"].value, m["rows_used"].value, m["rows_excluded"].value) for k, m in meta.items()
               if "rows_in" in m}
    assert counted == {"customers/embedding_space": (N, N, 0), "orders/embedding_space": (240, 240, 0),
                       "customers/relational_space": (N, N, 0), "customers/row_embeddings": (N, N, 0),
                       "orders/row_embeddings": (240, 240, 0), "churn/predictor": (N, N - UNLABELLED, UNLABELLED),
                       "churn/predictions": (N, N, 0)}
    predictor = meta["churn/predictor"]
    assert f"| excluded | {accounting.NO_TARGET} | 40 |" in predictor["row_accounting"].value
    assert [d["column"] for d in predictor["leakage"].value] == ["cancel_reason"]
    assert "churned" in predictor["hidden"].value
    assert meta["customers/relational_space"]["orphan_warnings"].value == "none"
    assert meta["customers/relational_space"]["child_row_accounting"].value["orders"]["rows_used"] == 240
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    gate = checks[("churn/predictor", "beats_baselines")]  # a leak does not pass quietly
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
    assert "possible leakage: 'cancel_reason'" in gate.description and "exclude_features" in gate.description


def test_a_number_target_with_na_text_is_a_regression_with_the_na_rows_counted(tmp_path):
    """Bad input: a warehouse column of numbers stored as text where 10 % of rows say 'n/a'. Outcome:
    the pipeline's predictor is a regression (not one class per distinct number), the 'n/a' rows are
    excluded as having no target value with a warning that names the token, and the held-out metrics
    are computed."""
    df = customers().drop(columns=["cancel_reason"])
    rng = np.random.default_rng(3)
    value = (df["spend"] * 3 + rng.normal(0, 5, N)).round(1).astype(str)
    value[rng.choice(N, N // 10, replace=False)] = "n/a"
    df["lifetime_value"] = value.astype(object)
    text = SPEC.format(exclude=[], relational="false").replace(
        "  - name: churn\n    table: customers\n    column: churn_flag\n    expression: churned = 1\n"
        "    kind: classification\n    positive_label: true\n", "  - name: ltv\n    table: customers\n"
        "    column: lifetime_value\n")
    topo = Topology.from_spec(parse_spec(text))
    space = train_space(topo["customers"], df.drop(columns=["lifetime_value"]), None,
                        ArtifactStore(tmp_path / "space"), SETTINGS)
    s = train_predictor(topo, topo.targets[0], df, df.drop(columns=["lifetime_value"]), space,
                        ArtifactStore(tmp_path / "ltv"), SETTINGS)
    assert s["kind"] == "regression"
    assert s["row_accounting"]["excluded"] == {accounting.NO_TARGET: N // 10}
    assert any("'n/a' (40 rows)" in n for n in s["notes"]), s["notes"]
    assert np.isfinite(s["metrics"]["rmse"] if "rmse" in s["metrics"] else list(s["metrics"].values())[0])


def test_a_class_target_of_numbers_keeps_its_text_classes_and_drops_only_missing_markers():
    """Bad input: a classification target of '1', '2', '3' with an 'other' class and some 'n/a'.
    Outcome: 'other' stays a class (a regression would have no use for it), only 'n/a' rows count as
    having no target value, with a note naming the marker; the model library reads it the same way."""
    from featrix_model.tasks import resolve_kind
    from featrix_pipeline.targets import labelled

    values = pd.Series(["1", "2", "3", "other"] * 100 + ["n/a"] * 10, name="grade", dtype=object)
    for kind in ("classification", "auto"):
        usable, note = labelled(values, kind)
        assert usable.sum() == 400 and not usable[-10:].any() and "'n/a'" in note and "other text values" in note
    assert labelled(values, "regression")[0].sum() == 300
    assert resolve_kind("classification", values)[0].value == "multiclass"
    kind, why = resolve_kind("auto", values)
    assert kind.value == "multiclass" and "1 text value(s), each a class" in why


def test_orphan_example_keys_that_are_emails_are_masked():
    """Bad input: children keyed by the customer's email, none of which matches a parent. Outcome: the
    all-orphans warning shows the example keys masked ('a***@***.com'), never the addresses."""
    rel = topology([]).spec.relationships[0]
    people = pd.DataFrame({"customer_id": [f"p{i}@mail.com" for i in range(30)]})
    kids = pd.DataFrame({"order_id": range(30), "customer_id": [f"a{i}@shop.com" for i in range(30)]})
    text = all_orphans_warning(rel, key_match(kids, people, rel))
    assert "***@***.com" in text and "a0@shop.com" not in text and "p0@mail.com" not in text, text
