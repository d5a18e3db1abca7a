"""RelationalSpace end to end: an aggregate-only label, the parent-level sampler, orphans and empty
parents, capping, time cutoffs, save/load, determinism, lookups at depth 2 and clear errors."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from featrix_model import EmbeddingSpace, RelationalSpace, load_space
from featrix_model.codecs.children import ChildrenCodec
from featrix_model.predictor import Predictor
from featrix_model.children import ChildBank, LazyEmbeddings, rows_digest
from featrix_model.relationships import Relationship, denormalise, parse_relationship
from featrix_model.training.sampler import epoch_batches

torch.set_num_threads(1)
JOIN = "transactions.customer_id = customers.customer_id"
START = pd.Timestamp("2024-01-01")


def customers_and_transactions(n=400, seed=0, n_empty=40, n_orphans=25):
    """Customers whose label (churned) depends only on the share of 'refund' transactions; the last
    ``n_empty`` customers have none, and ``n_orphans`` transactions have a null key and as many a key
    that matches no customer."""
    rng = np.random.default_rng(seed)
    parents = pd.DataFrame({"customer_id": np.arange(n), "region": rng.choice(["north", "south", "east", "west"], n),
                            "age": rng.integers(18, 80, n).astype(float)})
    prop = np.where(rng.random(n) < 0.5, 0.6, 0.08)
    rows = []
    for i in range(n - n_empty):
        k = int(rng.integers(3, 16))
        kinds = np.where(rng.random(k) < prop[i], "refund", rng.choice(["purchase", "subscription"], k))
        for j in range(k):
            rows.append((float(i), kinds[j], float(rng.lognormal(3, 1)),
                         START + pd.Timedelta(hours=int(rng.integers(0, 5000)))))
    for j in range(2 * n_orphans):
        rows.append((np.nan if j < n_orphans else float(10_000 + j), "refund", 1.0, START))
    ch = pd.DataFrame(rows, columns=["customer_id", "kind", "amount", "ts"])
    ch = ch.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # children in no particular order
    share = ch.groupby("customer_id")["kind"].apply(lambda s: (s == "refund").mean())
    parents["churned"] = share.reindex(parents["customer_id"].astype(float)).fillna(0).to_numpy() > 0.3
    return parents, ch


def positive_probability(out: pd.DataFrame) -> np.ndarray:
    return out["probabilities"].apply(lambda d: d.get(True, d.get("True"))).to_numpy(float)


@pytest.fixture(scope="module")
def churn():
    parents, ch = customers_and_transactions()
    rs = RelationalSpace.fit({"customers": parents.drop(columns="churned"), "transactions": ch}, [JOIN],
                             parent="customers", time_budget_s=5, child_time_budget_s=3, seed=0,
                             child_time={"transactions": "ts"}, exclude=("customer_id",))
    return parents, ch, rs


@pytest.fixture(scope="module")
def split(churn):
    parents, _, _ = churn
    train = parents.sample(frac=0.7, random_state=0)
    return train, parents.drop(train.index)


@pytest.fixture(scope="module")
def relational_predictor(churn, split):
    return Predictor.fit(churn[2], split[0], target="churned", seed=0)


# ---------------------------------------------------------------------------------- learning


def test_label_in_the_children_is_learned_only_by_the_relational_space(churn, split, relational_predictor):
    parents, _, _ = churn
    train, test = split
    assert relational_predictor.summary()["fine_tune"] is True  # automatic on a relational space
    auc = roc_auc_score(test["churned"], positive_probability(relational_predictor.predict_frame(test, explain=False)))
    assert auc > 0.9, f"relational AUC {auc:.3f}"
    es = EmbeddingSpace.fit(parents[["region", "age"]], time_budget_s=2, seed=0, progress=False)
    flat = Predictor.fit(es, train, target="churned", seed=0)
    flat_auc = roc_auc_score(test["churned"], positive_probability(flat.predict_frame(test, explain=False)))
    assert flat_auc < 0.7, f"parent-only AUC {flat_auc:.3f}: the label should not be in the parent columns"


# ---------------------------------------------------------------------------------- sampler


@pytest.mark.parametrize("n,bs", [(1000, 128), (129, 128), (50, 128), (128, 128), (1, 128), (257, 32)])
def test_every_row_sampler_puts_each_row_in_exactly_one_batch(n, bs):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    batches = epoch_batches(order, bs, every_row=True)
    assert torch.equal(torch.sort(torch.cat(batches)).values, torch.arange(n))
    sizes = [len(b) for b in batches]
    assert len(batches) == math.ceil(n / min(bs, n))
    assert max(sizes) - min(sizes) <= 1 and max(sizes) <= bs
    assert min(sizes) >= min(bs, n) // 2  # in-batch negatives: no tiny remainder batch


def test_table_sampler_still_drops_the_remainder():
    batches = epoch_batches(torch.arange(1000), 128)
    assert [len(b) for b in batches] == [128] * 7


def test_relational_training_sees_every_training_parent_each_epoch(churn):
    parents, _, rs = churn
    assert rs.config.every_row_each_epoch is True and rs.config.warm_start is True  # a warm start: MIN_EPOCHS
    meta = rs.timeline_["metadata"]
    assert meta["n_rows"] == len(parents)
    assert meta["n_train_rows"] == len(parents) - meta["n_validation_rows"]
    bs = meta["batch_size"]
    assert meta["n_train_rows"] % bs != 0  # so the drop-last rule would have lost rows
    assert meta["steps"] == len(rs.timeline) * math.ceil(meta["n_train_rows"] / bs)


# ---------------------------------------------------------------------------------- orphans, empty parents


def test_orphans_and_parents_without_children_are_counted_and_encode(churn):
    parents, ch, rs = churn
    link = rs.report()["links"]["transactions"]
    assert link["child_table"] == "transactions" and link["child_space"] == "table"
    assert link["parents_without_children"] == 40
    assert link["null_key"] == 25 and link["unmatched_key"] == 25
    assert link["children"] == len(ch) and link["parents"] == len(parents)
    assert any("orphans" in d for d in rs.decisions)
    prepared = rs.prepare(parents.drop(columns="churned"))
    counts = prepared["transactions.count"].to_numpy()
    assert (counts[-40:] == 0).all() and (counts[:-40] > 0).all()
    assert counts.sum() == len(ch) - 50  # orphans belong to nobody
    assert prepared["transactions.children"].iloc[-40:].isna().all()
    emb = rs.encode(parents.drop(columns="churned"))
    assert emb.shape == (len(parents), rs.d_model) and np.isfinite(emb).all()


# ---------------------------------------------------------------------------------- capping


def small_bank():
    """Parent 'a' has 10 children (times shuffled), 'b' has 3, 'c' none; plus a null-key and an
    unmatched-key orphan."""
    rng = np.random.default_rng(3)
    hours = np.concatenate([rng.permutation(10), [5, 1, 3], [0, 0]]).astype(float)
    keys = ["a"] * 10 + ["b"] * 3 + [None, "zzz"]
    amount = np.arange(15, dtype=float)
    ids = np.arange(15)
    return pd.DataFrame({"pid": keys, "hour": hours, "amount": amount, "id": ids})


def bank_of(rows: pd.DataFrame) -> tuple[ChildBank, np.ndarray]:
    emb = np.column_stack([rows["id"].to_numpy(float), rows["hour"].to_numpy(float)])
    return ChildBank(emb, rows[["pid"]].reset_index(drop=True), rows["hour"].to_numpy(float) * 3.6e12,
                     rows[["amount"]].to_numpy(float)), emb


def test_capping_keeps_evenly_spaced_children_in_time_order():
    rows = small_bank()
    bank, emb = bank_of(rows)
    parents = pd.DataFrame({"id": ["a", "b", "c"]})
    sel, counts, stats, info = bank.select(parents, None, 4, ("mean", "std", "max"))
    means = stats["mean"]
    assert counts.tolist() == [10, 3, 0]
    a_by_time = rows.index[:10][np.argsort(rows["hour"].to_numpy()[:10])]
    assert sel[0][1] == 10 and sel[0][0].tolist() == a_by_time[[0, 2, 5, 7]].tolist()  # i * 10 // 4
    assert sel[1][1] == 3 and sel[1][0].tolist() == [11, 12, 10]  # all of them, in time order
    assert sel[2] is None
    assert means[0, 0] == pytest.approx(rows["amount"][:10].mean())  # the mean uses every child, not the kept 4
    assert stats["std"][0, 0] == pytest.approx(rows["amount"][:10].std(ddof=0))
    assert stats["max"][0, 0] == rows["amount"][:10].max()
    assert np.isnan(means[2, 0])
    assert info["parents_capped"] == 1 and info["null_key"] == 1 and info["unmatched_key"] == 1
    assert info["max_children"] == 10 and info["parents_without_children"] == 1

    def plain(selections):
        return [None if v is None else (v[0].tolist(), v[1]) for v in selections]

    assert plain(bank.select(parents, None, 4)[0]) == plain(sel)  # deterministic: no random draw
    shuffled = rows.sample(frac=1.0, random_state=1).reset_index(drop=True)
    sel2 = bank_of(shuffled)[0].select(parents, None, 4)[0]
    assert shuffled["id"].to_numpy()[sel2[0][0]].tolist() == rows["id"].to_numpy()[sel[0][0]].tolist()

    codec = ChildrenCodec("t.children", cap=4, d_child=2).fit(pd.Series(sel, dtype=object)).attach(emb)
    out = codec.transform(pd.Series(sel, dtype=object))
    assert out["mask"].sum(1).tolist() == [4, 3, 0]
    assert out["missing"].tolist() == [False, False, True]
    assert np.array_equal(out["children"][0].numpy(), emb[sel[0][0]].astype(np.float32))
    assert not out["children"][2].any()


# ---------------------------------------------------------------------------------- cutoff


def small_customers():
    parents, ch = customers_and_transactions(80, seed=1, n_empty=5, n_orphans=3)
    parents["as_of"] = START + pd.to_timedelta(np.random.default_rng(0).integers(0, 5000, len(parents)), unit="h")
    parents.loc[:3, "as_of"] = pd.NaT  # no cutoff: every child counts
    ch.loc[:4, "ts"] = pd.NaT  # undated children
    first = ch.index[ch["customer_id"] == 10][0]
    ch.loc[first, "ts"] = parents.loc[10, "as_of"]  # exactly at the cutoff: not used
    return parents.drop(columns="churned"), ch


def fit_small(parents, ch, max_children=64):
    return RelationalSpace.fit({"customers": parents, "transactions": ch}, [JOIN], parent="customers",
                               time_budget_s=1, seed=0, child_time={"transactions": "ts"}, cutoff="as_of",
                               exclude=("customer_id",), max_children=max_children, epochs=2)


@pytest.fixture(scope="module")
def cut():
    parents, ch = small_customers()
    return parents, ch, fit_small(parents, ch)


def test_children_at_or_after_the_cutoff_are_not_used(cut):
    parents, ch, rs = cut
    m = ch.dropna(subset=["customer_id"]).merge(parents[["customer_id", "as_of"]].astype({"customer_id": float}),
                                                on="customer_id")
    dated, cutoff = m["ts"].notna(), m["as_of"].notna()
    used = ~cutoff | (dated & (m["ts"] < m["as_of"]))
    expected = used.groupby(m["customer_id"]).sum().reindex(parents["customer_id"].astype(float)).fillna(0)
    prepared = rs.prepare(parents)
    assert prepared["transactions.count"].tolist() == expected.tolist()
    mean = m[used].groupby("customer_id")["amount"].mean().reindex(parents["customer_id"].astype(float))
    np.testing.assert_allclose(prepared["transactions.amount.mean"].to_numpy(), mean.to_numpy())
    at_cutoff = m[(m["customer_id"] == 10) & (m["ts"] == m["as_of"])]
    assert len(at_cutoff) == 1  # the child dated exactly at the cutoff is left out
    link = rs.report()["links"]["transactions"]
    assert link["cutoff"] == "as_of"
    assert link["after_cutoff"] == int((dated & cutoff & ~used).sum()) > 0
    assert link["unknown_time"] == int((~dated & cutoff).sum()) > 0
    assert np.isfinite(rs.encode(parents)).all()


def test_missing_cutoff_column_gets_a_clear_error(cut):
    parents, _, rs = cut
    with pytest.raises(KeyError, match="cutoff column 'as_of'"):
        rs.encode(parents.drop(columns="as_of"))
    with pytest.raises(KeyError, match=r"key column\(s\) \['customer_id'\]"):
        rs.encode(parents.drop(columns="customer_id"))


def test_max_children_is_honoured_by_the_fitted_space(cut):
    parents, ch, _ = cut
    rs = fit_small(parents, ch, max_children=3)
    assert rs.report()["links"]["transactions"]["cap"] == 3
    col = "transactions.children"
    prepared = rs.prepare(parents)
    mask = rs.plan.codecs[col].transform(prepared[col])["mask"]
    assert mask.sum(1).tolist() == np.minimum(prepared["transactions.count"].to_numpy(), 3).astype(int).tolist()


# ---------------------------------------------------------------------------------- save / load, determinism


def test_save_load_round_trip_needs_the_child_tables(churn, split, relational_predictor, tmp_path):
    parents, ch, rs = churn
    frame = parents.drop(columns="churned")
    rs.save(tmp_path / "rs", figures=False)
    loaded = RelationalSpace.load(tmp_path / "rs", tables={"transactions": ch})
    assert rs.encode(frame).tobytes() == loaded.encode(frame).tobytes()
    assert loaded.report() == rs.report()
    any_kind = load_space(tmp_path / "rs", tables={"transactions": ch})  # the kind comes from config.json
    assert isinstance(any_kind, RelationalSpace)
    assert rs.encode(frame.head(50)).tobytes() == any_kind.encode(frame.head(50)).tobytes()
    with pytest.raises(TypeError, match="relational space"):
        EmbeddingSpace.load(tmp_path / "rs")
    bare = RelationalSpace.load(tmp_path / "rs")
    with pytest.raises(RuntimeError, match="transactions"):
        bare.encode(frame)

    test = split[1]
    relational_predictor.save(tmp_path / "p")
    again = Predictor.load(tmp_path / "p", tables={"transactions": ch})
    a = positive_probability(relational_predictor.predict_frame(test, explain=False))
    b = positive_probability(again.predict_frame(test, explain=False))
    assert np.array_equal(a, b)
    with pytest.raises(RuntimeError, match="transactions"):
        Predictor.load(tmp_path / "p").predict_frame(test, explain=False)


def test_a_loaded_space_reads_its_saved_child_bank_only_for_the_same_child_rows(cut, tmp_path, monkeypatch):
    parents, ch, rs = cut
    rs.save(tmp_path / "rs", figures=False)
    assert (tmp_path / "rs" / "children" / "transactions.bank.safetensors").is_file()
    child = rs.links[0].space
    calls = []
    encode = type(child).encode
    def counted(self, rows, *a, **k):  # encodes of child rows (the parent space encodes too)
        if not hasattr(self, "links"):
            calls.append(len(rows))
        return encode(self, rows, *a, **k)
    monkeypatch.setattr(type(child), "encode", counted)
    same = RelationalSpace.load(tmp_path / "rs", tables={"transactions": ch})
    assert same.encode(parents).tobytes() == rs.encode(parents).tobytes()
    assert calls == []  # the same child rows: the parents' children were saved encoded, read, not encoded again
    saved, read = rs.links[0].bank.embeddings, same.links[0].bank.embeddings
    assert saved.done.any() and np.array_equal(read.done, saved.done)
    assert np.array_equal(read.values, saved.values)
    changed = ch.copy()
    changed.loc[changed.index[7], "amount"] += 1.0  # one child value differs: no saved row is read
    other = RelationalSpace.load(tmp_path / "rs", tables={"transactions": changed})
    assert calls == [] and not other.links[0].bank.embeddings.done.any()  # encoded when parents need them
    other.encode(parents)
    emb = other.links[0].bank.embeddings
    assert len(calls) == 1 and calls[0] == int(emb.done.sum()) > 0
    fresh = child.encode(changed, hide=tuple(rs.links[0].hide))
    assert np.array_equal(emb.values[emb.done], fresh[emb.done])
    # another child space (other weights) never reads the bank saved with this one
    link = same.links[0]
    with torch.no_grad():
        next(link.space.net.parameters()).add_(0.01)
    link.build_bank({"transactions": ch}, tmp_path / "rs" / "children")
    assert not link.bank.embeddings.done.any()
    # the digest tells apart what encodes differently: cell types, the thread count
    a, b = pd.DataFrame({"v": [True, "x"]}), pd.DataFrame({"v": ["True", "x"]})
    assert rows_digest(a, [], child) != rows_digest(b, [], child) and rows_digest(a, [], child) == rows_digest(a, [], child)
    one = rows_digest(ch, [], child)
    torch.set_num_threads(2)
    try:
        assert rows_digest(ch, [], child) != one
    finally:
        torch.set_num_threads(1)


def test_a_bank_encodes_only_the_children_parents_use_with_the_bytes_of_encoding_them_all(cut):
    parents, ch, rs = cut
    link = rs.links[0]
    bank = link.build_bank({"transactions": ch})  # fresh: nothing encoded, nothing read from a file
    rs.plan.codecs[link.column].attach(bank.embeddings)
    assert not bank.embeddings.done.any()
    few = parents.iloc[:5]
    rs.encode(few)
    used = {int(p) for sel in rs.prepare(few)[link.column] if sel is not None for p in sel[0]}
    encoded = set(np.flatnonzero(bank.embeddings.done).tolist())
    assert used <= encoded and len(encoded) <= len(used) + 1  # + the padding row that empty slots read
    everything = link.space.encode(ch, hide=tuple(link.hide))
    assert np.array_equal(bank.embeddings.all(), everything)  # rows encoded late: the bytes of one pass
    assert np.array_equal(rs.encode(parents), rs.encode(parents))
    space = copy.deepcopy(link.space)
    lazy = LazyEmbeddings(ch, space, tuple(link.hide))
    with torch.no_grad():
        next(space.net.parameters()).add_(0.01)
    with pytest.raises(RuntimeError, match="weights changed"):  # one bank never mixes two sets of weights
        lazy.take(np.arange(3))


def test_same_seed_same_embeddings(cut):
    parents, ch, rs = cut
    again = fit_small(parents, ch)
    assert rs.encode(parents).tobytes() == again.encode(parents).tobytes()


# ---------------------------------------------------------------------------------- lookups and depth 2


def shop(seed=0):
    """customers ← orders ← items, with a stores lookup joined into orders."""
    rng = np.random.default_rng(seed)
    customers = pd.DataFrame({"customer_id": np.arange(60), "segment": rng.choice(["retail", "trade"], 60),
                              "tenure": rng.integers(1, 20, 60).astype(float)})
    stores = pd.DataFrame({"store_id": np.arange(5), "city": ["Oslo", "Lima", "Pune", "Kyiv", "Quito"],
                           "size": [100.0, 250.0, 80.0, 400.0, 150.0]})
    n_orders = 200
    orders = pd.DataFrame({"order_id": np.arange(n_orders), "customer_id": rng.integers(0, 60, n_orders),
                           "store_id": rng.integers(0, 5, n_orders).astype(float),
                           "channel": rng.choice(["web", "shop", "phone"], n_orders)})
    orders.loc[[3, 7], "store_id"] = np.nan
    orders.loc[[5], "store_id"] = 99.0  # no such store
    orders = orders.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    n_items = 600
    items = pd.DataFrame({"order_id": rng.integers(0, n_orders, n_items),
                          "sku": rng.choice(["pen", "ink", "pad", "clip"], n_items),
                          "price": rng.gamma(2.0, 5.0, n_items)})
    return {"customers": customers, "orders": orders, "items": items, "stores": stores}


SHOP_JOINS = ["orders.customer_id = customers.customer_id", "items.order_id = orders.order_id",
              "orders.store_id = stores.store_id"]


@pytest.fixture(scope="module")
def deep():
    tables = shop()
    rs = RelationalSpace.fit(tables, SHOP_JOINS, parent="customers", time_budget_s=1, seed=0,
                             primary_keys={"orders": "order_id", "customers": "customer_id"}, epochs=2)
    return tables, rs


def test_depth_two_space_with_a_lookup(deep, tmp_path):
    tables, rs = deep
    link = rs.report()["links"]["orders"]
    assert link["child_space"] == "relational"
    assert link["lookups"] == {"stores": "orders.store_id = stores.store_id"}
    orders_space = rs.links[0].space
    assert isinstance(orders_space, RelationalSpace) and orders_space.parent == "orders"
    assert orders_space.report()["links"]["items"]["child_space"] == "table"
    assert {"stores.city", "stores.size"} <= set(orders_space.plan.columns)
    assert "stores.store_id" not in orders_space.plan.all_columns
    assert "order_id" not in orders_space.plan.columns and "customer_id" not in rs.plan.columns
    emb = rs.encode(tables["customers"])
    assert emb.shape == (60, rs.d_model) and np.isfinite(emb).all()
    rs.save(tmp_path / "deep", figures=False)
    loaded = RelationalSpace.load(tmp_path / "deep", tables=tables)
    assert isinstance(loaded.links[0].space, RelationalSpace)
    assert emb.tobytes() == loaded.encode(tables["customers"]).tobytes()


def test_denormalise_keeps_row_count_and_order():
    tables = shop()
    rel = parse_relationship("orders.store_id = stores.store_id", tables)
    assert (rel.child, rel.parent, rel.cardinality) == ("orders", "stores", "many_to_one")
    orders = tables["orders"]
    out = denormalise(orders.set_index("order_id", drop=False), [(rel, "stores")], tables)
    assert len(out) == len(orders) and out["order_id"].tolist() == orders["order_id"].tolist()
    assert {"stores.city", "stores.size"} <= set(out.columns) and "stores.store_id" not in out.columns
    city = dict(zip(tables["stores"]["store_id"].astype(float), tables["stores"]["city"]))
    expected = orders["store_id"].map(city)  # NaN for a null or unknown store
    assert out["stores.city"].fillna("?").tolist() == expected.fillna("?").tolist()
    assert out["stores.city"].isna().sum() == 3  # two null keys and one unmatched key


# ---------------------------------------------------------------------------------- errors


def test_relationship_direction_and_composite_keys():
    a = pd.DataFrame({"k": [1, 2, 3], "j": ["x", "y", "z"]})
    b = pd.DataFrame({"k": [1, 1, 2, 3], "j": ["x", "x", "y", "z"]})
    one = parse_relationship("a.k = b.k", {"a": a, "b": b})
    assert (one.child, one.parent, one.cardinality) == ("b", "a", "one_to_many")
    both = parse_relationship('"b".k = a.k AND b.j = a.j', {"a": a, "b": b})
    assert (both.child, both.parent, both.child_keys, both.parent_keys) == ("b", "a", ("k", "j"), ("k", "j"))


def test_bad_relationships_get_clear_errors():
    customers = pd.DataFrame({"customer_id": [1, 2, 3], "name": ["a", "b", "c"]})
    orders = pd.DataFrame({"customer_id": [1, 1, 2, 3], "total": [1.0, 2.0, 3.0, 4.0]})
    tables = {"customers": customers, "orders": orders}
    with pytest.raises(ValueError, match=r"'orders\.customer_id < customers\.customer_id' must be one or more equalities"):
        parse_relationship("orders.customer_id < customers.customer_id", tables)
    with pytest.raises(ValueError, match="not valid SQL"):
        parse_relationship("orders.customer_id = = customers.customer_id", tables)
    with pytest.raises(ValueError, match="no join condition"):
        parse_relationship({"cardinality": "many_to_one"}, tables)
    text_keys = {**tables, "orders": orders.astype({"customer_id": str})}
    with pytest.raises(TypeError, match=r"key 'customer_id' is string.*'customer_id' is integer"):
        parse_relationship("orders.customer_id = customers.customer_id", text_keys)
    no_keys = {**tables, "orders": orders.assign(customer_id=None)}
    with pytest.raises(TypeError, match=r"key 'customer_id' holds only NULLs"):
        parse_relationship("orders.customer_id = customers.customer_id", no_keys)
    visits = pd.DataFrame({"customer_id": [1, 1, 2], "day": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"orders\.customer_id = visits\.customer_id.*many-to-many"):
        parse_relationship("orders.customer_id = visits.customer_id", {**tables, "visits": visits})
    with pytest.raises(KeyError, match="table 'clients'"):
        parse_relationship("orders.customer_id = clients.customer_id", tables)
    with pytest.raises(KeyError, match=r"table 'orders' has no column \['client_id'\]"):
        parse_relationship("orders.client_id = customers.customer_id", tables)
    dup = {**tables, "customers": pd.concat([customers, customers.head(1)])}
    with pytest.raises(ValueError, match="parent table 'customers' has 2 rows with a repeated key"):
        parse_relationship({"join": "orders.customer_id = customers.customer_id", "cardinality": "many_to_one"}, dup)
    with pytest.raises(KeyError, match="parent table 'shops'"):
        RelationalSpace.fit(tables, ["orders.customer_id = customers.customer_id"], parent="shops")
    with pytest.raises(ValueError, match="table 'orders' has no child table"):
        RelationalSpace.fit(tables, ["orders.customer_id = customers.customer_id"], parent="orders")
    with pytest.raises(KeyError, match="child_time: table 'orders' has no column 'when'"):
        RelationalSpace.fit(tables, ["orders.customer_id = customers.customer_id"], parent="customers",
                            child_time={"orders": "when"})


def test_several_child_tables_each_get_their_own_pooled_column():
    tables = shop()
    rng = np.random.default_rng(1)
    tables["tickets"] = pd.DataFrame({"customer_id": rng.integers(0, 50, 90),  # customers 50–59 have none
                                      "topic": rng.choice(["billing", "delivery"], 90)})
    with pytest.raises(ValueError, match="child table 'tickets' of 'customers'.*at least 2"):
        RelationalSpace.fit(tables, ["tickets.customer_id = customers.customer_id"], parent="customers", epochs=1)
    tables["tickets"]["minutes"] = rng.gamma(2.0, 4.0, 90)
    rs = RelationalSpace.fit({k: tables[k] for k in ("customers", "orders", "tickets")},
                             [SHOP_JOINS[0], "tickets.customer_id = customers.customer_id"], parent="customers",
                             time_budget_s=1, seed=0, primary_keys={"orders": "order_id"}, exclude=("customer_id",),
                             epochs=2)
    assert {"orders.children", "tickets.children", "orders.count", "tickets.count"} <= set(rs.plan.columns)
    report = rs.report()["links"]
    assert report["tickets"]["parents_without_children"] >= 10 and report["orders"]["child_space"] == "table"
    counts = rs.child_aggregates(tables["customers"])
    assert (counts.loc[counts["customer_id"] >= 50, "tickets.count"] == 0).all()
    assert counts["orders.count"].sum() == len(tables["orders"])
    assert np.isfinite(rs.encode(tables["customers"])).all()


def test_lookup_with_repeated_keys_is_refused_by_name():
    tables = shop()
    tables["stores"] = pd.concat([tables["stores"], tables["stores"].iloc[[2]]], ignore_index=True)
    rel = parse_relationship({"join": "orders.store_id = stores.store_id", "cardinality": "many_to_one"},
                             {**tables, "stores": tables["stores"].drop_duplicates("store_id")})
    with pytest.raises(ValueError, match="lookup 'stores'.*repeats key.*2"):
        denormalise(tables["orders"], [(rel, "stores")], tables)


def test_hidden_child_columns_never_reach_the_parent():
    """A child column carrying the parent's own value (e.g. joined back from the parent) is hidden from the
    child encoding and from the child statistics: it cannot leak a parent target."""
    tables = shop()
    tenure = tables["customers"].set_index("customer_id")["tenure"]
    tables["orders"]["customer_tenure"] = tables["orders"]["customer_id"].map(tenure)
    rs = RelationalSpace.fit({k: tables[k] for k in ("customers", "orders")}, [SHOP_JOINS[0]], parent="customers",
                             time_budget_s=1, seed=0, primary_keys={"orders": "order_id"}, epochs=1,
                             child_hide={"orders": ["customer_tenure"]})
    assert "customer_tenure" in rs.links[0].hide
    assert not any("customer_tenure" in c for c in rs.plan.columns)


def test_relationship_objects_get_the_same_key_checks():
    tables = shop()
    tables["orders"]["customer_id"] = tables["orders"]["customer_id"].astype(str)
    rel = Relationship("orders", "customers", ("customer_id",), ("customer_id",))
    with pytest.raises(TypeError, match="customer_id"):
        parse_relationship(rel, tables)


def test_train_rows_keep_parents_out_of_training_but_in_the_report(cut):
    parents, ch, full = cut
    keep = np.arange(len(parents)) % 4 != 0  # every fourth customer is held out
    rs = RelationalSpace.fit({"customers": parents, "transactions": ch}, [JOIN], parent="customers",
                             time_budget_s=1, seed=0, child_time={"transactions": "ts"}, cutoff="as_of",
                             exclude=("customer_id",), epochs=2, train_rows=keep)
    meta = rs.timeline_["metadata"]
    assert meta["n_train_rows"] + meta["n_validation_rows"] == int(keep.sum()) < len(parents)
    # how children meet parents is about every parent: a held-out customer's children are not orphans
    assert rs.report()["links"]["transactions"]["unmatched_key"] == full.report()["links"]["transactions"]["unmatched_key"]
    assert any(f"trained on {int(keep.sum())} of the {len(parents)} rows of 'customers'" in d for d in rs.decisions)
    held = parents[~keep].reset_index(drop=True)
    assert rs.prepare(held)["transactions.count"].tolist() == full.prepare(held)["transactions.count"].tolist()
    assert np.isfinite(rs.encode(held)).all()
