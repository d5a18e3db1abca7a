"""Explanations that reach into child tables (``featrix_model.child_explain``): on a planted
parent/child task the response names the child table the label lives in and ranks the planted child
row first, on held-out parents.

Each customer has 4–9 transactions of kinds buy / sell / hold; a flagged customer's first one is of
kind "alarm" instead — the count and the amounts say nothing, only that one child row does. A
second child table (visits) is noise."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model import Predictor, RelationalSpace
from tests.conftest import REPO

torch.set_num_threads(1)


def planted(n=300, seed=0):
    rng = np.random.default_rng(seed)
    parents = pd.DataFrame({"pid": np.arange(n), "region": rng.choice(["n", "s", "e", "w"], n),
                            "age": rng.integers(18, 80, n).astype(float)})
    flag = rng.random(n) < 0.5
    tx, visits = [], []
    for i in range(n):
        for j in range(int(rng.integers(4, 10))):
            alarm = bool(flag[i] and j == 0)
            tx.append((i, "alarm" if alarm else rng.choice(["buy", "sell", "hold"]), float(rng.normal()), alarm))
        for _ in range(int(rng.integers(3, 8))):
            visits.append((i, rng.choice(["web", "shop", "phone"]), float(rng.normal())))
    tx = pd.DataFrame(tx, columns=["pid", "kind", "amount", "planted"]).sample(frac=1.0, random_state=seed)
    parents["flag"] = flag
    return parents, tx.reset_index(drop=True), pd.DataFrame(visits, columns=["pid", "channel", "minutes"])


@pytest.fixture(scope="module")
def explained():
    parents, tx, visits = planted()
    rs = RelationalSpace.fit({"customers": parents.drop(columns="flag"), "transactions": tx.drop(columns="planted"),
                              "visits": visits}, ["transactions.pid = customers.pid", "visits.pid = customers.pid"],
                             parent="customers", time_budget_s=5, child_time_budget_s=3, seed=0, exclude=("pid",))
    train = parents.sample(frac=0.7, random_state=0)
    held = parents.drop(train.index).reset_index(drop=True)
    p = Predictor.fit(rs, train, target="flag", seed=0)
    return p, held, tx, p.predict(held.drop(columns="flag"))


def test_the_planted_child_table_carries_the_importance_and_the_planted_rows_rank_first(explained):
    _, held, tx, responses = explained
    planted_rows = set(np.flatnonzero(tx["planted"].to_numpy()))
    shares = pd.DataFrame([{k: v["share"] for k, v in r["child_tables"].items()} for r in responses])
    assert shares["transactions"].mean() > 2 * shares["visits"].mean(), shares.mean().to_dict()
    first = [r["child_tables"]["transactions"]["top_children"][0]["row"] in planted_rows
             for r, flagged in zip(responses, held["flag"]) if flagged]
    assert np.mean(first) >= 0.9, f"the planted row ranks first for {np.mean(first):.0%} of flagged held-out parents"


def test_child_explanations_are_consistent_and_valid(explained):
    p, held, tx, responses = explained
    schema = json.loads((REPO / "schemas" / "prediction.schema.json").read_text())
    for r, pid in zip(responses, held["pid"]):
        jsonschema.validate(r, schema)
        ct = r["child_tables"]["transactions"]
        mine = set(np.flatnonzero(tx["pid"].to_numpy() == pid))
        assert ct["children"] == len(mine) and {c["row"] for c in ct["top_children"]} <= mine
        assert r["child_tables"]["visits"]["child_table"] == "visits"
    one = p.predict(held.drop(columns="flag").iloc[[3]])[0]
    assert one == responses[3]  # a row explained alone gets what it gets among others
    assert "child_tables" not in p.predict(held.drop(columns="flag").iloc[:2], explain=False)[0]
