"""The one kind of SQL a dataset spec may carry besides join conditions: a single scalar expression
over one table's own columns (a target ``expression``).

The text is parsed with sqlglot and every node of the tree is checked against an allowlist:
column references, literals, operators, ``CASE``/``IF``, casts and a list of scalar functions.
Anything else — a second statement, a subquery, a table function or file reader
(``read_text``, ``read_csv``), an aggregate or window, a parameter, a column of another table —
is refused with the node that broke the rule. The accepted tree is the only thing rendered into
the one ``SELECT`` that evaluates it; the text as written never reaches a database.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

MAX_LENGTH = 4_000
MAX_DEPTH = 64  # parentheses inside parentheses


def max_depth(sql: str) -> int:
    """The deepest nesting of parentheses in ``sql`` (quotes ignored: an upper bound is enough)."""
    depth = deepest = 0
    for ch in sql:
        depth += (ch == "(") - (ch == ")")
        deepest = max(deepest, depth)
    return deepest

# sqlglot node classes that are not functions: values, names and operators
_NODES = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Neg, exp.Not,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.DPipe,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.And, exp.Or, exp.Xor, exp.Like, exp.ILike, exp.Is, exp.Between, exp.In,
    exp.DataType, exp.Interval, exp.Var, exp.Tuple,
)
# scalar functions, by sqlglot class name (each is one value per row, reads no table and no file)
SCALAR_FUNCTIONS = frozenset({
    "Case", "If", "IsNan", "IsInf", "Cast", "TryCast", "Coalesce", "Nullif", "Greatest", "Least",
    "Abs", "Round", "Floor", "Ceil", "Sqrt", "Ln", "Log", "Exp", "Pow", "Sign",
    "Lower", "Upper", "Length", "Trim", "Substring", "Concat", "ConcatWs", "Replace", "Left", "Right",
    "StrPosition", "StartsWith", "EndsWith", "Contains", "RegexpLike", "RegexpExtract", "RegexpReplace",
    "Year", "Month", "Day", "Hour", "Minute", "Second", "DayOfWeek", "DayOfWeekIso", "DayOfYear",
    "DayOfMonth", "Week", "WeekOfYear", "Quarter", "Extract", "DateTrunc", "TimestampTrunc", "DateDiff",
    "TimestampDiff", "DateAdd", "DateSub", "TimeToStr", "StrToTime", "StrToDate", "TsOrDsToDate", "Date",
})
# DuckDB scalar functions sqlglot does not model (parsed as anonymous calls), lower case
SCALAR_ANONYMOUS = frozenset({"isnan", "isinf", "isfinite", "log10", "log2", "epoch", "date_part", "dayname",
                              "monthname", "yearweek", "strlen", "bit_length", "ascii", "prefix", "suffix"})


class ExpressionError(ValueError):
    """A spec expression is not one scalar expression over the table's own columns."""


def parse_scalar(sql: str, table: str, columns: list[str] | None = None) -> exp.Expression:
    """The checked tree of ``sql``: one scalar expression over ``table``'s columns (``columns``, when
    known, are the names it may read). Raises ExpressionError saying what is not allowed and why."""
    if not isinstance(sql, str) or not sql.strip():
        raise ExpressionError("the expression is empty: write one SQL expression over the table's columns, "
                              "e.g. CASE WHEN arr_delay > 15 THEN 1 ELSE 0 END")
    if len(sql) > MAX_LENGTH:
        raise ExpressionError(f"the expression is {len(sql):,} characters long; at most {MAX_LENGTH:,} are allowed")
    depth = max_depth(sql)
    if depth > MAX_DEPTH:
        raise ExpressionError(f"it nests {depth} levels of parentheses; at most {MAX_DEPTH} are allowed")
    try:
        statements = [s for s in sqlglot.parse(sql, dialect="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as e:
        raise ExpressionError(f"not valid SQL: {str(e).splitlines()[0]}") from None
    except RecursionError:  # deep nesting of operators without parentheses (NOT NOT NOT ...)
        raise ExpressionError("it nests too deeply to read; write a flatter expression") from None
    if len(statements) != 1:
        raise ExpressionError(f"{len(statements)} statements were given; write exactly one expression (no ';')")
    tree = statements[0]
    try:
        for node in tree.walk():
            _check_node(node, table)
        tree.sql(dialect="duckdb")  # renders (recursively) here, not later inside a pipeline step
    except RecursionError:
        raise ExpressionError("it nests too deeply to read; write a flatter expression") from None
    if columns is not None:
        missing = [c for c in columns_read(tree) if c not in columns]
        if missing:
            raise ExpressionError(f"it reads {missing}, which {'is' if len(missing) == 1 else 'are'} not "
                                  f"column(s) of table '{table}'; its columns are {list(columns)}")
    return tree


def columns_read(tree: exp.Expression | str, table: str = "") -> tuple[str, ...]:
    """Every column an expression reads, in order of first use (a string is checked first)."""
    if isinstance(tree, str):
        tree = parse_scalar(tree, table)
    return tuple(dict.fromkeys(c.name for c in tree.find_all(exp.Column)))


def scalar_select(tree: exp.Expression, alias: str, frame: str) -> exp.Select:
    """``SELECT <tree> AS alias FROM frame``: the only statement an expression is rendered into."""
    tree = tree.copy()
    for node in tree.walk():
        node.comments = None  # nothing of the text as written but the checked tree is rendered
        if isinstance(node, exp.Column):
            node.set("table", None)
        if isinstance(node, exp.Identifier):
            node.set("quoted", True)
    return exp.select(exp.alias_(tree, alias, quoted=True)).from_(exp.to_table(frame, quoted=True))


def _check_node(node: exp.Expression, table: str) -> None:
    if isinstance(node, exp.Column):
        if node.args.get("db") or node.args.get("catalog") or (node.table and node.table != table):
            raise ExpressionError(f"{node.sql(dialect='duckdb')!r} reads another table; an expression reads only "
                                  f"the columns of '{table}' (write the bare column name)")
        if isinstance(node.this, exp.Star):
            raise ExpressionError("'*' is not a value; name the column(s) the expression reads")
        return
    if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest") or node.args.get("field")):
        raise ExpressionError(f"{node.sql(dialect='duckdb')!r} reads a query; IN takes a list of values here")
    if isinstance(node, _NODES):  # (sqlglot models some operators, AND and OR among them, as functions)
        return
    if isinstance(node, exp.Anonymous):
        if str(node.name).lower() not in SCALAR_ANONYMOUS:
            raise ExpressionError(f"function {node.name}() is not allowed: an expression may call only scalar "
                                  f"functions ({_allowed()})")
        return
    if isinstance(node, exp.Func):
        if isinstance(node, (exp.AggFunc, exp.Window)) or type(node).__name__ not in SCALAR_FUNCTIONS:
            raise ExpressionError(f"{node.sql_name().lower()}() is not allowed: an expression is one value per row "
                                  f"and may call only scalar functions ({_allowed()})")
        return
    what = {exp.Select: "a query", exp.Subquery: "a subquery", exp.Placeholder: "a parameter",
            exp.Star: "'*'", exp.Window: "a window", exp.Command: "a command"}
    name = next((v for k, v in what.items() if isinstance(node, k)), type(node).__name__)
    raise ExpressionError(f"{name} ({node.sql(dialect='duckdb')[:60]!r}) is not allowed: write one expression "
                          "over the table's columns — column names, literals, operators, CASE, casts and "
                          "scalar functions")


def _allowed() -> str:
    return "e.g. abs, round, lower, coalesce, year, date_diff, regexp_matches; no table functions or file readers"
