"""Bad input: SQL a dataset spec can carry runs as one scalar expression over the table's
own columns and nothing else; sources stay inside their warehouse. Each test names one kind of bad
input and the outcome it must get."""

from __future__ import annotations

import json
import os

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp, parse

from featrix_pipeline import expressions
from featrix_pipeline.expressions import ExpressionError, parse_scalar, scalar_select
from featrix_pipeline.spec import SpecError, check_columns, parse_spec
from featrix_pipeline.targets import target_values
from featrix_pipeline.warehouse import Warehouse, WarehouseError
from tests.conftest import DEMO_SPEC

GOOD = DEMO_SPEC.read_text()
EXPRESSION = "    expression: arr_delay > 15"
assert EXPRESSION in GOOD


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _refused(expression: str) -> str:
    text = GOOD.replace(EXPRESSION, f"    expression: {json.dumps(expression)}")
    with pytest.raises(SpecError) as e:
        parse_spec(text, "bad.yaml")
    msg = str(e.value)
    assert f"line {_line(text, 'expression: ')}" in msg and "targets.0.expression" in msg, msg
    return msg


def test_a_multi_statement_expression_is_refused_with_its_line_and_writes_nothing(tmp_path):
    """Bad input: `1; COPY (SELECT 'x') TO 'x.csv'; SELECT amount > 50`. Outcome: the spec is refused
    at load with the expression's line; evaluating it directly is refused too, and no file appears."""
    target_file = tmp_path / "x.csv"
    sql = f"1; COPY (SELECT 'x') TO '{target_file}'; SELECT arr_delay > 50"
    assert "3 statements" in _refused(sql)
    spec = parse_spec(GOOD, "good.yaml")
    target = next(t for t in spec.targets if t.expression)
    with pytest.raises(ValueError, match="3 statements"):
        target_values(pd.DataFrame({"arr_delay": [1, 60]}), target.__class__(**{**target.__dict__, "expression": sql}))
    assert not target_file.exists()


@pytest.mark.parametrize("sql, says", [
    ("read_text('/etc/hostname') = 'x'", "read_text() is not allowed"),
    ("(SELECT max(arr_delay) FROM flights) > 15", "subquery"),
    ("arr_delay IN (SELECT 1)", "reads a query"),
    ("read_csv('/etc/passwd') IS NULL", "read_csv() is not allowed"),
    ("sum(arr_delay) OVER () > 0", "window"),
    ("count(*) > 1", "count() is not allowed"),
    ("planes.seats > 100", "reads another table"),
    ("main.flights.arr_delay > 15", "reads another table"),
    ("getenv('HOME') = 'x'", "getenv() is not allowed"),
    ("arr_delay > $1", "parameter"),
])
def test_an_expression_that_is_not_one_scalar_expression_is_refused(sql, says):
    """Bad input: file readers, subqueries, table functions, aggregates, windows, another table's
    columns, environment access, parameters. Outcome: refused at spec load, with the line and why."""
    assert says in _refused(sql)


def test_an_expression_over_an_unknown_column_is_named_against_the_warehouse():
    """Bad input: an expression reading a column the table lacks. Outcome: the warehouse check names
    the column, the spec line and the closest real name."""
    spec = parse_spec(GOOD.replace(EXPRESSION, "    expression: arr_dlay > 15"), "x.yaml")
    cols = {"flights": ["flight_id", "tailnum", "carrier", "origin", "dest", "time_hour", "arr_delay"],
            "planes": ["tailnum", "manufacturer"], "airlines": ["carrier"], "airports": ["faa", "lat", "lon", "alt"],
            "weather": ["origin", "time_hour", "precip"]}
    with pytest.raises(SpecError) as e:
        check_columns(spec, cols)
    msg = str(e.value)
    assert "flights.arr_dlay" in msg and "arr_delay" in msg and f"line {_line(GOOD, EXPRESSION)}" in msg


def test_the_evaluating_database_can_reach_no_file_even_past_the_guard(tmp_path, monkeypatch):
    """Bad input: a file reader that got past the guard (the guard switched off). Outcome: the
    in-memory database that evaluates expressions has no file access, so the target fails clearly."""
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t")
    monkeypatch.setattr("featrix_pipeline.targets.parse_scalar",
                        lambda sql, table, columns=None: parse(sql, dialect="duckdb")[0])
    spec = parse_spec(GOOD, "good.yaml")
    target = next(t for t in spec.targets if t.expression)
    bad = target.__class__(**{**target.__dict__, "expression": f"(SELECT content FROM read_text('{secret}'))"})
    with pytest.raises(ValueError, match="failed on table 'flights'") as e:
        target_values(pd.DataFrame({"arr_delay": [1]}), bad)
    assert "s3cr3t" not in str(e.value)


def test_a_column_named_like_sql_is_quoted_not_interpolated():
    """Bad input: columns named `select`, `a "b`, `x; drop`. Outcome: the expression reads them as
    plain names (quoted identifiers), the frame's rows all come back."""
    df = pd.DataFrame({"select": [1, 20], 'a "b': [3, 4], "x; drop": [5, 6]})
    spec = parse_spec(GOOD, "good.yaml")
    target = next(t for t in spec.targets if t.expression)
    t = target.__class__(**{**target.__dict__, "expression": '"select" + "a ""b" + "x; drop" > 10'})
    assert target_values(df, t).tolist() == [False, True]


# ---------------------------------------------------------------- sources


def _spec_with_source(url: str, source: str) -> str:
    return GOOD.replace("url: duckdb:///data/nycflights13.duckdb", f"url: {url}", 1).replace(
        "  planes:\n", f"  planes:\n    source: {source!r}\n", 1)


@pytest.mark.parametrize("source", ["../secret", "sub/planes", "/etc/passwd", "..", "a\\b"])
def test_a_file_source_that_leaves_its_folder_is_refused(tmp_path, source):
    """Bad input: a `files:///` warehouse whose table source is a path (`../secret`, `/etc/passwd`).
    Outcome: refused at spec load naming the table and the line, and refused by the warehouse too."""
    assert "url: duckdb:///data/nycflights13.duckdb" in GOOD and "  planes:\n" in GOOD
    text = _spec_with_source(f"files:///{tmp_path}", source)
    with pytest.raises(SpecError, match="table 'planes': source .* is not a file name in the warehouse folder"):
        parse_spec(text, "bad.yaml")
    (tmp_path.parent / "secret.csv").write_text("a\n1\n")
    with pytest.raises(WarehouseError, match="not a file name in the warehouse folder"):
        Warehouse(f"files:///{tmp_path}").read_table(source)


def test_a_file_linked_out_of_the_folder_is_refused(tmp_path):
    """Bad input: `planes.csv` in the folder is a symbolic link to a file elsewhere. Outcome: a clear
    error naming where it points, not a read of the outside file."""
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    folder = tmp_path / "wh"
    folder.mkdir()
    os.symlink(outside, folder / "planes.csv")
    with pytest.raises(WarehouseError, match="outside the warehouse folder"):
        Warehouse(f"files:///{folder}").read_table("planes")


def test_a_three_part_source_keeps_its_catalog(tmp_path):
    """Bad input: `source: cat.schema.t`. Outcome: the catalog is kept (the right database is read;
    a wrong catalog is an error naming it, never a silent read of the same-named table elsewhere)."""
    path = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA sales; CREATE TABLE sales.orders AS SELECT 1 AS id")
    con.close()
    wh = Warehouse(f"duckdb:///{path}")
    assert wh.read_table("shop.sales.orders")["id"].tolist() == [1]
    with pytest.raises(WarehouseError, match="other"):
        wh.read_table("other.sales.orders")
    with pytest.raises(WarehouseError, match="4 dot-separated parts"):
        wh.read_table("a.b.c.d")
    with pytest.raises(SpecError, match="4 dot-separated parts"):
        parse_spec(_spec_with_source(f"duckdb:///{path}", "a.b.c.d"), "bad.yaml")


@pytest.mark.parametrize("join, says", [
    ("flights.tailnum = planes.tailnum; DROP TABLE planes", "2 statements"),
    ("main.flights.tailnum = planes.tailnum", "names a schema"),
    ("flights.tailnum > planes.tailnum", "equalities joined by AND"),
    ("flights.tailnum = lower(planes.tailnum)", "must be a qualified column"),
    ("flights.tailnum = planes.tailnum OR flights.year = planes.year", "equalities joined by AND"),
])
def test_a_join_condition_that_is_not_equalities_is_refused(join, says):
    """Bad input: a second statement, a schema-qualified column, a non-equality, a function or OR in
    a join condition. Outcome: refused at spec load with the relationship's line."""
    text = GOOD.replace("flights.tailnum = planes.tailnum", join)
    with pytest.raises(SpecError, match=says) as e:
        parse_spec(text, "bad.yaml")
    assert f"line {_line(text, join)}" in str(e.value)


# ---------------------------------------------------------------- properties

_columns = st.sampled_from(["arr_delay", "dep_delay", "carrier", "select", "we ird"])
_leaf = st.one_of(
    _columns.map(lambda c: exp.column(c, quoted=True)),
    st.integers(-10**6, 10**6).map(lambda i: exp.Literal.number(i)),
    st.text(max_size=8).map(exp.Literal.string),
    st.sampled_from([exp.Null(), exp.Boolean(this=True)]),
    st.sampled_from(["planes.seats", "read_text('/etc/hostname')", "(SELECT 1)", "count(*)", "$1",
                     "read_csv('x')", "sum(arr_delay) OVER ()", "x IN (SELECT 1)"]).map(
        lambda s: parse(s, dialect="duckdb")[0]),
)


def _combine(children):
    binary = st.sampled_from([exp.Add, exp.Sub, exp.Mul, exp.EQ, exp.GT, exp.And, exp.Or, exp.DPipe])
    return st.one_of(
        st.tuples(binary, children, children).map(lambda t: t[0](this=t[1], expression=t[2])),
        st.tuples(st.sampled_from(["abs", "lower", "coalesce", "read_parquet", "getenv", "year"]), children).map(
            lambda t: parse(f"{t[0]}(1)", dialect="duckdb")[0].__class__(this=t[1]) if t[0] != "getenv"
            else exp.Anonymous(this="getenv", expressions=[t[1]])),
        children.map(lambda c: exp.Case(ifs=[exp.If(this=c, true=exp.Literal.number(1))],
                                        default=exp.Literal.number(0))),
        children.map(lambda c: exp.Not(this=c)),
    )


_trees = st.recursive(_leaf, _combine, max_leaves=8)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(_trees, st.booleans())
def test_no_generated_expression_reaches_anything_but_one_scalar_select(tree, as_text_with_suffix):
    """Property: for any generated expression (dangerous pieces mixed in), the guard either refuses it
    or what runs is exactly one SELECT of one value from the frame, with no subquery, other table,
    file reader, aggregate or unknown function anywhere in it."""
    text = tree.sql(dialect="duckdb") + ("; SELECT 1" if as_text_with_suffix else "")
    try:
        checked = parse_scalar(text, "flights")
    except ExpressionError:
        return
    assert not as_text_with_suffix
    rendered = scalar_select(checked, "__target", "__featrix_frame").sql(dialect="duckdb")
    statements = parse(rendered, dialect="duckdb")
    assert len(statements) == 1 and isinstance(statements[0], exp.Select)
    (select,) = statements
    assert [t.name for t in select.find_all(exp.Table)] == ["__featrix_frame"]
    assert len(select.expressions) == 1
    assert not list(select.find_all(exp.Subquery, exp.AggFunc, exp.Window, exp.Placeholder, exp.Star))
    for fn in select.find_all(exp.Anonymous):
        assert str(fn.name).lower() in expressions.SCALAR_ANONYMOUS
    for fn in select.find_all(exp.Func):
        assert isinstance(fn, expressions._NODES) or type(fn).__name__ in expressions.SCALAR_FUNCTIONS or \
            isinstance(fn, exp.Anonymous)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s))
def test_any_column_name_is_quoted_and_comes_back_unchanged(name):
    """Property: any column name (quotes, spaces, semicolons, reserved words, unicode) survives a
    quoted identifier round trip and is read by an expression as that one column."""
    rendered = scalar_select(exp.column(name, quoted=True), "__t", "__f").sql(dialect="duckdb")
    (select,) = parse(rendered, dialect="duckdb")
    assert [c.name for c in select.find_all(exp.Column)] == [name]
    df = pd.DataFrame({name: [1, 2]})
    spec = parse_spec(GOOD, "good.yaml")
    target = next(t for t in spec.targets if t.expression)
    quoted = exp.column(name, quoted=True).sql(dialect="duckdb")
    assert target_values(df, target.__class__(**{**target.__dict__, "expression": f"{quoted} > 1"})).tolist() == \
        [False, True]

