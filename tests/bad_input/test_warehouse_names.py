"""Bad input through the whole Dagster graph: a warehouse no one here wrote, whose table and column
names hold spaces, quotes, semicolons, reserved words and non-Latin letters, and whose keys have
NULL and duplicated values. Outcome: every name is read as a name (quoted, never interpolated),
the run goes through, and each fault is caught by a named check with the offending rows."""

from __future__ import annotations

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from assets.definitions import build_assets, build_resources
from featrix_pipeline.spec import SpecError, load_spec, parse_spec
from featrix_pipeline.topology import Topology
from featrix_pipeline.warehouse import Warehouse

CUSTOMERS = 'Customer "List"; DROP TABLE x'
ORDERS = "order items"


def _seed(db, null_keys: bool = False, duplicate_parent: bool = False) -> None:
    rng = np.random.default_rng(0)
    n_c, n_o = 60, 400
    customers = pd.DataFrame({"customer id": [f"C{i:03d}" for i in range(n_c)],
                              "select": rng.choice(["gold", "silver", "bronze"], n_c),
                              'the "tier"': rng.integers(1, 4, n_c), "名前": rng.choice(["東京", "大阪"], n_c)})
    if duplicate_parent:
        customers = pd.concat([customers, customers.head(2)], ignore_index=True)
    orders = pd.DataFrame({"order; id": np.arange(n_o), "customer id": rng.choice(customers["customer id"], n_o),
                           "from": rng.normal(50, 10, n_o).round(2), "group by": rng.choice(["a", "b", "c"], n_o)})
    flip = rng.random(n_o) < 0.15  # no single column predicts it perfectly (that would be flagged as leakage)
    orders["big order"] = ((orders["group by"] == "a") ^ flip).astype(int)
    if null_keys:
        orders.loc[:19, "customer id"] = None
    wh = Warehouse(f"duckdb:///{db}")
    wh.write_table(CUSTOMERS, customers)
    wh.write_table(ORDERS, orders)


def _spec(folder, db) -> str:
    return f"""
name: hostile_names
warehouse:
  url: duckdb:///{db}
tables:
  customers:
    source: {CUSTOMERS!r}
    primary_key: customer id
    embedding_space: false
  orders:
    source: {ORDERS}
    primary_key: "order; id"
relationships:
  - name: orders_customers
    join: 'orders."customer id" = customers."customer id"'
    cardinality: many_to_one
    lookup: true
targets:
  - name: big_order
    table: orders
    column: big order
    exclude_features: [from]
    lightgbm_margin: 0.2
"""


def _run(tmp_path, monkeypatch, models: bool, **faults):
    monkeypatch.setenv("FEATRIX_HOME", str(tmp_path))
    monkeypatch.setenv("FEATRIX_TIME_BUDGET_S", "8")
    db = tmp_path / "hostile.duckdb"
    _seed(db, **faults)
    path = tmp_path / "spec.yaml"
    path.write_text(_spec(tmp_path, db))
    spec = load_spec(path)
    assets = build_assets(Topology.from_spec(spec))
    if not models:
        skip = ("embedding_space", "row_embeddings", "relational_space", "predictor", "predictions", "drift")
        assets = [a for a in assets if not any(k.path[-1] in skip for k in a.keys)]
    result = dg.materialize(assets, resources=build_resources(spec), raise_on_error=False)
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    return spec, result, checks, db


def test_hostile_names_run_through_the_whole_graph(tmp_path, monkeypatch):
    """Bad input: tables named `Customer "List"; DROP TABLE x` and `order items`, columns named
    `select`, `from`, `group by`, `order; id`, `the "tier"`, `名前`. Outcome: the run succeeds, every
    check passes, the lookup's columns reach the orders' space, predictions are written, and no
    table was dropped or created other than the predictions table."""
    spec, result, checks, db = _run(tmp_path, monkeypatch, models=True)
    assert result.success
    assert not [k for k, e in checks.items() if not e.passed], {k: e.description for k, e in checks.items()
                                                                 if not e.passed}
    con = duckdb.connect(str(db), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    scored = con.execute('SELECT * FROM "big_order_predictions"').df()
    con.close()
    assert tables == {CUSTOMERS, ORDERS, "big_order_predictions"}
    assert len(scored) == 400 and "order; id" in scored.columns
    space = [m for m in result.get_asset_materialization_events()
             if m.asset_key == dg.AssetKey(["orders", "embedding_space"])][0].materialization.metadata
    columns = space["columns"].value
    assert "customer id.select" in columns and "group by" in columns


def test_null_and_duplicated_keys_are_caught_with_the_rows(tmp_path, monkeypatch):
    """Bad input: 20 orders with a NULL customer key and two customers listed twice. Outcome: the
    join's key-null check and the customers' primary-key check fail, naming the keys."""
    spec, result, checks, db = _run(tmp_path, monkeypatch, models=False, null_keys=True, duplicate_parent=True)
    failed = {k: e for k, e in checks.items() if not e.passed}
    pk = failed[("customers/profile", "primary_key")]
    assert "C000" in str(pk.metadata["examples"].value)
    nulls = [e for k, e in failed.items() if k[0] == "orders_customers/join_report"]
    assert nulls and any("null" in (e.description or "").lower() for e in nulls), \
        {k: e.description for k, e in failed.items()}


@pytest.mark.parametrize("text, says", [
    ("name: x\ntables:\n  a:\n\tprimary_key: id\n", "not valid YAML"),
    ("name: x\ntables:\n  a:\n    primary_key: 'id\n", "not valid YAML"),
    ("- just\n- a list\n", "must be a YAML mapping"),
    ("name: x\ntables:\n  order items:\n    primary_key: id\n", "letters, digits and '_'"),
])
def test_malformed_yaml_is_refused_with_where_and_what(text, says):
    """Bad input: a tab for indentation, an unclosed quote, a list instead of a mapping, a table key
    with a space. Outcome: one SpecError naming the file and, where YAML knows it, the line."""
    with pytest.raises(SpecError, match=says) as e:
        parse_spec(text, "bad.yaml")
    assert "bad.yaml" in str(e.value)
