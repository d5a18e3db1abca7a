"""Bad input: join checks and the useless-column
filter on small real tables (DuckDB where a warehouse is involved). Each test names one kind of bad
input and the outcome it must get: a check that fails says why with the rows that prove it, a check
that cannot run says so instead of passing, and example rows never show personal data unless the
dataset allows it."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

from assets.definitions import build_assets, build_resources
from featrix_pipeline.columns import decide_columns, filter_table, profile_table
from featrix_pipeline.expectations import validate_table
from featrix_pipeline.joins import validate_join
from featrix_pipeline.privacy import ALL, detect_personal_data
from featrix_pipeline.spec import load_spec, parse_spec
from featrix_pipeline.topology import Topology
from featrix_pipeline.warehouse import Warehouse

SHOP = """
name: shop
tables:
  customers: {primary_key: id}
  orders: {primary_key: order_id}
  hourly: {primary_key: [site, hour]}
  readings: {primary_key: reading_id}
relationships:
  - name: orders_customers
    join: orders.customer_id = customers.id
    cardinality: many_to_one
  - name: readings_hourly
    join: readings.site = hourly.site
    cardinality: many_to_one
"""
RELS = {r.name: r for r in parse_spec(SHOP).relationships}


def customers(n: int = 6) -> pd.DataFrame:
    first = ["Jane", "Omar", "Mei", "Lars", "Ana", "Tom"]
    last = ["Doe", "Haddad", "Chen", "Berg", "Silva", "Okafor"]
    return pd.DataFrame({"id": np.arange(1, n + 1), "segment": list("abcabc")[:n],
                         "contact_name": [f"{first[i % 6]} {last[i % 6]}" for i in range(n)],
                         "email": [f"{first[i % 6].lower()}.{last[i % 6].lower()}@example.com" for i in range(n)],
                         "phone": [f"+1 (212) 555-01{i:02d}" for i in range(n)]})


def orders(keys) -> pd.DataFrame:
    return pd.DataFrame({"order_id": np.arange(100, 100 + len(keys)), "customer_id": keys,
                         "amount": np.linspace(5, 50, len(keys))})


def check(report, name):
    [c] = [c for c in report.checks if c.name == name]
    return c


def test_int_vs_string_keys_leave_cardinality_not_passed_and_say_it_could_not_be_checked():
    """Bad input: orders.customer_id holds '1', '2', ... (VARCHAR) against customers.id 1, 2, ...
    (BIGINT), so the join is empty. Outcome: key_types and coverage fail (ERROR); cardinality does not
    pass either: WARN, "could not be checked because the key types differ", with the CAST that fixes it."""
    r = validate_join(RELS["orders_customers"], orders(["1", "2", "3", "1", "2", "4"]), customers(),
                      parent_primary_key=["id"])
    assert not check(r, "key_types").passed and not check(r, "coverage").passed
    card = check(r, "cardinality")
    assert not card.passed and card.severity == "WARN"
    assert card.description.startswith("Cardinality could not be checked because the key types differ")
    assert "CAST(orders.customer_id AS BIGINT)" in card.description and "Fix:" in card.description
    assert r.observed_cardinality == "unknown" and card.metadata["could_not_check"]
    # the same keys as integers: observed, and it passes
    ok = validate_join(RELS["orders_customers"], orders([1, 2, 3, 1, 2, 4]), customers(), parent_primary_key=["id"])
    assert check(ok, "cardinality").passed and ok.observed_cardinality == "many_to_one"


def test_duplicated_parent_primary_key_rows_are_reported_as_duplicate_parent_rows():
    """Bad input: customers holds id 2 three times and id 5 twice, and the join uses customers' whole
    primary key (id). Outcome: cardinality and duplicate_parent_keys fail with "duplicate parent rows",
    the example keys with their counts (2 ×3, 5 ×2), and point to customers' primary_key check — not
    the many_to_many / missing-key-column advice."""
    people = customers()
    dup = pd.concat([people, people[people["id"] == 2], people[people["id"] == 2], people[people["id"] == 5]],
                    ignore_index=True)
    r = validate_join(RELS["orders_customers"], orders([1, 2, 2, 3, 5, 6]), dup, parent_primary_key=["id"])
    card, d = check(r, "cardinality"), check(r, "duplicate_parent_keys")
    for c in (card, d):
        assert not c.passed and c.severity == "ERROR"
        assert "duplicate parent rows" in c.description and "primary_key check of customers/profile" in c.description
        assert "2 ×3" in c.description and "5 ×2" in c.description
        assert "add the missing key column" not in c.description
    assert "not many_to_many" in card.description and card.metadata["cause"] == "duplicate_parent_rows"
    assert "identical copies" in d.description
    assert [e["id"] for e in card.metadata["examples"]] == [2, 5]  # the keys that add the most rows first
    assert card.metadata["examples"][0]["customers_rows"] == 3


def test_a_composite_parent_key_joined_on_part_of_it_names_the_missing_column():
    """Bad input: hourly's primary key is (site, hour) but the condition joins readings on site only.
    Outcome: cardinality fails as really many_to_many and names the missing key column hour, with the
    condition that adds it (readings has an hour column too); a child without that column is told so."""
    hourly = pd.DataFrame({"site": ["A", "A", "A", "B", "B", "B"], "hour": [0, 1, 2, 0, 1, 2],
                           "temp": [1.0, 2, 3, 4, 5, 6]})
    readings = pd.DataFrame({"reading_id": range(4), "site": ["A", "B", "A", "B"], "hour": [0, 1, 2, 2]})
    r = validate_join(RELS["readings_hourly"], readings, hourly, parent_primary_key=["site", "hour"])
    card = check(r, "cardinality")
    assert not card.passed and card.metadata["cause"] == "missing_key_columns"
    assert "really many_to_many" in card.description and "hourly's primary key is (site, hour)" in card.description
    assert "add the missing key column hour" in card.description
    assert "`readings.site = hourly.site AND readings.hour = hourly.hour`" in card.description
    assert "add the missing key column hour" in check(r, "duplicate_parent_keys").description
    without = validate_join(RELS["readings_hourly"], readings.drop(columns="hour"), hourly,
                            parent_primary_key=["site", "hour"])
    assert "readings has no column named hour" in check(without, "cardinality").description


def test_orphan_and_null_foreign_keys_get_coverage_messages_with_example_keys():
    """Bad input: orders whose customer_id 77 and 88 match no customer, and orders with a NULL
    customer_id. Outcome: coverage fails naming the orphan keys with their row counts (77, 4 rows,
    first) and counting the NULL-key rows; key_nulls names the orders with a NULL key by order_id."""
    keys = [1, 77, 77, 77, 88, 2, None, None, 77, 1]
    r = validate_join(RELS["orders_customers"], orders(pd.array(keys, dtype="Int64")), customers(),
                      parent_primary_key=["id"], child_primary_key=["order_id"])
    cov = check(r, "coverage")
    assert not cov.passed and cov.severity == "ERROR" and r.orphan_rows == 5
    assert "top orphan keys: 77 (4), 88 (1)" in cov.description
    assert "2 more orders rows have a NULL customer_id (see key_nulls)" in cov.description
    assert [(e["customer_id"], e["rows_with_this_key"]) for e in cov.metadata["examples"]] == [(77, 4), (88, 1)]
    nulls = check(r, "key_nulls")
    assert not nulls.passed and "(e.g. order_id 106, 107)" in nulls.description
    assert [e["order_id"] for e in nulls.metadata["examples"]] == [106, 107]


def test_sequential_keys_code_like_ids_and_near_empty_columns_are_dropped_with_reasons():
    """Bad input: a table with a sequential surrogate key (shuffled 1..300), two 100 %-unique code-like
    id columns ('ACME-00123', 'cust_000451') and two 99 %-NULL columns. Outcome: the filtered table
    drops all five, each with its reason (the pattern; the measured NULL share and the 95 % threshold),
    and keeps a unique float measurement, the keys, the time column (even a counter), a time-named
    counter and a keep_columns entry."""
    n, rng = 300, np.random.default_rng(0)
    spec = parse_spec("""
name: filter
tables:
  orders: {primary_key: order_id, time_column: tick, keep_columns: [ticket_no]}
  customers: {primary_key: id}
relationships:
  - join: orders.customer_id = customers.id
    cardinality: many_to_one
""")
    sparse = [None] * (n - 3) + ["x", "y", "z"]
    df = pd.DataFrame({
        "order_id": np.arange(1, n + 1), "customer_id": rng.permutation(n) + 1, "row_sk": rng.permutation(n) + 1,
        "account_code": [f"ACME-{i:05d}" for i in rng.permutation(n) + 100],
        "customer_ref": [f"cust_{i:06d}" for i in rng.permutation(n) + 400],
        "note": sparse, "promo": [None] * (n - 3) + [1.5, 2.5, 3.5],
        "amount": rng.normal(50, 10, n), "ticket_no": np.arange(5000, 5000 + n), "tick": np.arange(n),
        "hour_no": np.arange(n),
        "segment": rng.choice(["retail", "trade", "web"], n)})
    decisions = decide_columns(spec, "orders", profile_table(spec, "orders", df))
    kept = filter_table(df, decisions)
    dropped = {c: d["reason"] for c, d in decisions.items() if not d["keep"]}
    assert set(dropped) == {"row_sk", "account_code", "customer_ref", "note", "promo"}, dropped
    assert "sequential integers (1..300, step 1)" in dropped["row_sk"] and "keep_columns" in dropped["row_sk"]
    assert "code-like identifiers (shape 'acme-#')" in dropped["account_code"]
    assert "code-like identifiers (shape 'cust_#')" in dropped["customer_ref"]
    for c in ("note", "promo"):
        assert "99.0% NULL" in dropped[c] and "95% null-share threshold" in dropped[c]
        assert decisions[c]["kind"] == "mostly_null"
    assert {"order_id", "customer_id", "amount", "ticket_no", "tick", "hour_no", "segment"} <= set(kept.columns)
    assert "keep_columns" in decisions["ticket_no"]["reason"] and "a key" in decisions["customer_id"]["reason"]
    assert "time_column" in decisions["tick"]["reason"]  # a counter the filter would drop, kept as the time
    assert decisions["hour_no"]["kind"] == "kept"  # named as a time: a scale, not an id
    assert len(kept) == n


def test_personal_data_in_example_rows_is_masked_unless_allowed():
    """Bad input: orders carry the buyer's email, phone and name, and some orders have orphan keys.
    Outcome: the coverage examples, the report and its markdown show the orphan key and the order, but
    the email, phone and name masked ('j***@***.com'); the profile and the rows of a failed Great
    Expectations check are masked too. A table that allows personal data shows it as it is."""
    people = customers()
    kids = orders([1, 2, 9, 9, 3, 4]).assign(buyer_email=people["email"].to_numpy(), phone=people["phone"].to_numpy(),
                                             contact_name=people["contact_name"].to_numpy())
    assert detect_personal_data(kids) == {"buyer_email": "email", "phone": "phone", "contact_name": "person_name"}
    r = validate_join(RELS["orders_customers"], kids, people, parent_primary_key=["id"])
    [ex] = check(r, "coverage").metadata["examples"]
    assert ex["customer_id"] == 9 and ex["order_id"] == 102 and ex["rows_with_this_key"] == 2  # the proof stays
    assert ex["buyer_email"] == "m***@***.com" and ex["phone"] == "+* (***) ***-**02" and ex["contact_name"] == "M. C."
    text = r.markdown() + str(r.to_dict())
    assert not any(v in text for v in [*people["email"], *people["phone"], *people["contact_name"]])
    assert check(r, "coverage").metadata["masked_personal_data"]["buyer_email"] == "email"
    shown = validate_join(RELS["orders_customers"], kids, people, allowed_personal_data={"orders": ALL})
    assert check(shown, "coverage").metadata["examples"][0]["buyer_email"] == "mei.chen@example.com"
    spec = parse_spec(SHOP)
    profile = profile_table(spec, "customers", people)
    prof = profile["columns"]
    assert prof["email"]["personal_data"] == "email" and all("@***." in e for e in prof["email"]["examples"])
    assert "segment" in prof and "personal_data" not in prof["segment"]
    # the Great Expectations suite's failing rows (a duplicated primary key) are masked the same way
    twice = pd.concat([people, people.iloc[[1]]], ignore_index=True)
    [pk] = [o for o in validate_table(spec, "customers", twice, profile) if o.expectation.endswith("to_be_unique")]
    assert not pk.success and pk.examples and all(e["id"] == 2 for e in pk.examples)
    assert {e["email"] for e in pk.examples} == {"o***@***.com"} and {e["contact_name"] for e in pk.examples} == {"O. H."}


def test_quoted_spaced_and_reserved_key_names_still_join(tmp_path):
    """Bad input: key columns named "order" (a reserved word), "line no" (a space) and "it's" (a
    quote), written to and read back from a real DuckDB warehouse. Outcome: the condition parses, the
    clean join passes every check, and a planted type mismatch and a missing key column are reported
    with SQL that quotes the names (CAST(items."order" AS BIGINT), items."line no" = orders."line no")."""
    spec = parse_spec("""
name: odd
tables:
  orders: {primary_key: ["order", "line no"]}
  items: {primary_key: "it's"}
relationships:
  - name: items_orders
    join: items."order" = orders."order" AND items."line no" = orders."line no"
    cardinality: many_to_one
  - name: items_orders_partly
    join: items."order" = orders."order"
    cardinality: many_to_one
""")
    full, partly = spec.relationships
    wh = Warehouse(f"duckdb:///{tmp_path / 'odd.duckdb'}")
    wh.write_table("orders", pd.DataFrame({"order": [1, 1, 2], "line no": [1, 2, 1], "select": ["a", "b", "c"]}))
    wh.write_table("items", pd.DataFrame({"it's": [10, 11, 12, 13], "order": [1, 1, 2, 2], "line no": [1, 2, 1, 1]}))
    o, i = wh.read_table("orders", order_by=["order", "line no"]), wh.read_table("items", order_by=["it's"])
    r = validate_join(full, i, o, parent_primary_key=["order", "line no"], child_primary_key=["it's"])
    assert r.ok and all(c.passed for c in r.checks), [c.description for c in r.checks if not c.passed]
    bad = validate_join(full, i.assign(order=i["order"].astype(str)), o, parent_primary_key=["order", "line no"])
    assert 'CAST(items."order" AS BIGINT)' in check(bad, "key_types").description
    assert "could not be checked" in check(bad, "cardinality").description
    part = validate_join(partly, i, o, parent_primary_key=["order", "line no"])
    assert 'items."order" = orders."order" AND items."line no" = orders."line no"' in check(part, "cardinality").description


def test_dagster_join_checks_on_a_warehouse_with_mismatched_keys_and_personal_data(tmp_path, monkeypatch):
    """Bad input: a DuckDB warehouse whose orders.customer_id is text and whose orders carry buyer
    emails. Outcome (a real Dagster run of the raw and join-report assets): the cardinality check is
    not passed, severity WARN, "could not be checked"; coverage fails as ERROR with masked emails in
    its examples; no check is missing."""
    monkeypatch.setenv("FEATRIX_HOME", str(tmp_path))
    db = tmp_path / "shop.duckdb"
    wh = Warehouse(f"duckdb:///{db}")
    wh.write_table("customers", customers())
    wh.write_table("orders", orders(["1", "2", "3", "9"]).assign(
        buyer_email=["ann.lee@example.com", "bo.kim@example.com", "cy.ng@example.com", "di.ray@example.com"]))
    path = tmp_path / "spec.yaml"
    path.write_text(f"""
name: shop_dq
warehouse:
  url: duckdb:///{db}
tables:
  customers: {{primary_key: id, embedding_space: false}}
  orders: {{primary_key: order_id, embedding_space: false}}
relationships:
  - name: orders_customers
    join: orders.customer_id = customers.id
    cardinality: many_to_one
""")
    spec = load_spec(path)
    wanted = {"customers/raw", "orders/raw", "orders_customers/join_report"}
    assets = [a for a in build_assets(Topology.from_spec(spec)) if {k.to_user_string() for k in a.keys} & wanted]
    result = dg.materialize(assets, resources=build_resources(spec), raise_on_error=False)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"coverage", "key_types", "cardinality", "duplicate_parent_keys", "key_nulls"}
    card = checks["cardinality"]
    assert not card.passed and card.severity == dg.AssetCheckSeverity.WARN
    assert "could not be checked because the key types differ" in card.description
    cov = checks["coverage"]
    assert not cov.passed and cov.severity == dg.AssetCheckSeverity.ERROR
    shown = cov.metadata["examples"].value
    assert "a***@***.com" in shown and "example.com" not in shown


def test_a_join_on_an_alternate_key_that_repeats_gets_no_add_a_column_advice():
    """Bad input: planes' primary key is plane_id, flights join on tailnum (an alternate key) and one
    tailnum repeats. Outcome: the messages say the join key is not part of the primary key and not
    unique (deduplicate, join on the primary key, or declare many_to_many) — never "add plane_id"."""
    spec = parse_spec("""
name: fleet
tables:
  flights: {primary_key: flight_id}
  planes: {primary_key: plane_id}
relationships:
  - name: flights_planes
    join: flights.tailnum = planes.tailnum
    cardinality: many_to_one
""")
    planes = pd.DataFrame({"plane_id": [1, 2, 3], "tailnum": ["N1", "N1", "N2"]})
    flights = pd.DataFrame({"flight_id": range(4), "tailnum": ["N1", "N2", "N1", "N2"]})
    r = validate_join(spec.relationships[0], flights, planes, parent_primary_key=["plane_id"])
    for name in ("cardinality", "duplicate_parent_keys"):
        text = check(r, name).description
        assert not check(r, name).passed and "not part of planes's primary key (plane_id)" in text, text
        assert "add the missing key column" not in text, text


def test_personal_data_is_found_behind_placeholders_mixed_kinds_and_role_names():
    """Bad input: an `email` column with 25 % 'unknown', a `contact` column mixing emails and phone
    numbers, a `customer` column of people's names. Outcome: each is detected and every value masked by
    its own shape; airline and airport names stay visible."""
    from featrix_pipeline.privacy import mask_value, personal_kind

    def kind(name, values):
        return personal_kind(pd.Series(values, dtype=object), name)

    assert kind("email", ["ann.lee@mail.com"] * 75 + ["unknown"] * 25) == "email"
    assert kind("contact", ["jane@x.org", "+1 (212) 555-0101"] * 50) == "contact"
    assert mask_value("jane@x.org", "contact") == "j***@***.org"
    assert mask_value("+1 (212) 555-0101", "contact").endswith("01") and "555" not in mask_value("+1 (212) 555-0101", "contact")
    assert kind("customer", ["Jane Doe", "John Smith", "Ada Lovelace"] * 30) == "person_name"
    assert kind("carrier_name", ["United Air Lines Inc.", "American Airlines Inc."] * 30) is None
    assert kind("name", ["John F Kennedy Intl", "La Guardia"] * 30) is None


def test_a_sequential_key_with_holes_is_still_an_identifier():
    """Bad input: a surrogate key with 17 % of its ids deleted, and one with a hole every 7 ids.
    Outcome: both score as sequential-integer identifiers from their values; ids sampled sparsely
    from a large range (not a counter) and unique measurements are not called sequences."""
    from featrix_model.usefulness import sequence_step

    rng = np.random.default_rng(0)
    ids = np.arange(1, 1201)
    assert sequence_step(pd.Series(ids[rng.random(1200) > 0.17]), "order_id")[0] == 1
    assert sequence_step(pd.Series([i for i in range(1, 1400) if i % 7]), "ref")[0] == 1
    assert sequence_step(pd.Series(np.sort(rng.choice(100_000, 500, replace=False))), "order_id") is None
    assert sequence_step(pd.Series(rng.integers(0, 10**6, 500)), "population") is None
