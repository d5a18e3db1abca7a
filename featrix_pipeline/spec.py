"""Dataset spec: one YAML file that names a warehouse, its tables, their relationships and targets.

The file is validated against ``schemas/dataset.schema.json``; every error names the field and the
line it sits on. Relationship conditions are SQL (``flights.tailnum = planes.tailnum``) parsed by the
model library's sqlglot join parser, and every table they mention is checked against the declared tables.
"""

from __future__ import annotations

import json
import os
import re
import zoneinfo
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from featrix_model.relationships import JoinSyntaxError, Relationship, parse_join
from featrix_pipeline.expressions import ExpressionError, columns_read, parse_scalar
from featrix_pipeline.secrets import SecretError, display_url, from_environment, secret_parameters, url_password
from featrix_pipeline.locations import resolve_url, source_problem

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "schemas" / "dataset.schema.json"
DEFAULT_SPEC = REPO_ROOT / "schemas" / "datasets" / "nycflights13.yaml"
DEFAULT_URL = "duckdb:///data/nycflights13.duckdb"
DEFAULT_CRON = "0 6 * * *"  # the refresh-and-score job: daily at 06:00


class SpecError(ValueError):
    """A dataset spec is wrong; the message names the file, line and field and says what to do."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    primary_key: tuple[str, ...]
    source: str
    time_column: str | None = None
    exclude_columns: tuple[str, ...] = ()
    keep_columns: tuple[str, ...] = ()
    row_limit: int | None = None
    description: str = ""
    embedding_space: bool = True
    relational_space: bool | str = "auto"
    cutoff_column: str | None = None
    drift: dict = field(default_factory=dict, compare=False)  # this table's drift thresholds (over the dataset's)
    show_personal_data: bool | tuple[str, ...] = False  # columns shown unmasked in example rows (True: all)


@dataclass(frozen=True)
class RelationshipSpec(Relationship):
    """A declared relationship: the model's ``Relationship`` (child = many side, parent = one side,
    ``condition`` as written, ``left`` its first table) plus what the spec says about checking and
    using it."""

    coverage_warn_below: float = 0.95
    coverage_error_below: float = 0.5
    max_key_null_ratio: float = 0.05
    note: str = ""
    lookup: bool = False
    lookup_columns: tuple[str, ...] = ()  # empty: every column of the lookup table

    @property
    def lookup_prefix(self) -> str:
        """Prefix of a lookup's columns in the child's rows: the foreign key (``origin.lat``, ``dest.lat``),
        or the lookup table for a composite key (``weather.precip``)."""
        return self.child_keys[0] if len(self.child_keys) == 1 else self.parent

    def to_model(self, name: str | None = None) -> Relationship:
        """The plain model relationship (what ``featrix_model`` needs), optionally renamed."""
        return Relationship(self.child, self.parent, self.child_keys, self.parent_keys,
                            self.name if name is None else name, self.cardinality, self.condition)


@dataclass(frozen=True)
class TargetSpec:
    name: str
    table: str
    column: str
    kind: str = "auto"
    positive_label: Any = None
    expression: str | None = None
    exclude_features: tuple[str, ...] = ()
    cost_false_positive: float | None = None
    cost_false_negative: float | None = None
    lightgbm_margin: float | None = None
    note: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    path: Path
    warehouse_url: str = field(repr=False)  # may hold a password (from url_env): never shown
    warehouse_schema: str | None
    tables: dict[str, TableSpec]
    # environment variables holding the whole URL / its password (resolved where connections open)
    warehouse_url_env: str | None = None
    warehouse_password_env: str | None = None
    relationships: tuple[RelationshipSpec, ...] = ()
    targets: tuple[TargetSpec, ...] = ()
    description: str = ""
    schedule_cron: str = DEFAULT_CRON
    schedule_timezone: str = "UTC"
    drift: dict = field(default_factory=dict, compare=False)  # dataset-wide drift thresholds
    retention: int = 3
    raw: dict = field(default_factory=dict, repr=False, compare=False)
    lines: dict = field(default_factory=dict, repr=False, compare=False)  # JSON path → line in the file

    def key_columns(self, table: str) -> set[str]:
        """Primary-key columns plus every column a relationship joins on."""
        keys = set(self.tables[table].primary_key)
        for rel in self.relationships:
            if rel.child == table:
                keys.update(rel.child_keys)
            if rel.parent == table:
                keys.update(rel.parent_keys)
        return keys

    def targets_of(self, table: str) -> list[TargetSpec]:
        return [t for t in self.targets if t.table == table]

    def drift_thresholds(self, table: str) -> dict:
        """The drift thresholds that apply to ``table``: the dataset's, overridden by the table's own."""
        return {**self.drift, **self.tables[table].drift}


# ---------------------------------------------------------------- YAML with line numbers


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps `on`/`yes`/`no` as strings (YAML 1.2 booleans only)."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map each JSON path in the document to its 1-based line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[path + (key,)] = key_node.start_mark.line + 1
            _line_index(value_node, path + (key,), out)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), out)
    return out


def _repeated_keys(node: yaml.Node, path: tuple = ()) -> list[str]:
    """Keys given twice in one mapping (YAML would silently keep the last), with both lines."""
    out = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key, line = key_node.value, key_node.start_mark.line + 1
            dotted = ".".join(str(x) for x in (*path, key))
            if key in first:
                out.append(f"line {line}, field '{dotted}': given twice (first on line {first[key]}); YAML would "
                           "silently keep the last one — keep one of them")
            first.setdefault(key, line)
            out += _repeated_keys(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out += _repeated_keys(item, (*path, i))
    return out


def _hint(error) -> str:
    """What to do about a schema error whose message alone does not say."""
    if error.validator == "pattern" and "A-Za-z_" in str(error.validator_value):
        return (" — a name here is letters, digits and '_' (not starting with a digit); a table whose "
                "warehouse name differs keeps that name in `source`")
    return ""


def _where(lines: dict[tuple, int], path: tuple) -> str:
    p = tuple(path)
    while p not in lines and p:
        p = p[:-1]
    dotted = ".".join(str(x) for x in path) or "(top level)"
    return f"line {lines.get(p, 1)}, field '{dotted}'"


# ---------------------------------------------------------------- public API


def load_spec(path: str | os.PathLike | None = None) -> DatasetSpec:
    """Load and validate a dataset spec. ``path`` defaults to $FEATRIX_SPEC, then the demo spec."""
    path = Path(path or os.environ.get("FEATRIX_SPEC") or DEFAULT_SPEC)
    if not path.is_file():
        raise SpecError(f"Dataset spec {path} does not exist. Set FEATRIX_SPEC to a YAML file under schemas/datasets/.")
    text = path.read_text()
    return parse_spec(text, path)


def parse_spec(text: str, path: str | os.PathLike = "<string>") -> DatasetSpec:
    path = Path(path)
    try:
        node = yaml.compose(text, Loader=_Loader)
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict) or node is None:
        raise SpecError(f"{path}: the spec must be a YAML mapping with at least 'name' and 'tables'.")
    repeated = _repeated_keys(node)
    if repeated:
        raise SpecError("Dataset spec is invalid:\n  " + "\n  ".join(f"{path}: {r}" for r in repeated[:10]))
    lines = _line_index(node)
    schema = json.loads(SCHEMA_PATH.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        msgs = [f"{path}: {_where(lines, tuple(e.absolute_path))}: {e.message}{_hint(e)}" for e in errors[:10]]
        raise SpecError("Dataset spec is invalid:\n  " + "\n  ".join(msgs))

    def fail(where: tuple, msg: str):
        raise SpecError(f"{path}: {_where(lines, where)}: {msg}")

    wh = doc.get("warehouse", {}) or {}
    url = _warehouse_url(wh, fail)
    kind = resolve_url(url)[0]
    tables: dict[str, TableSpec] = {}
    for name, t in doc["tables"].items():
        problem = source_problem(t.get("source", name), kind)
        if problem:
            fail(("tables", name, "source") if "source" in t else ("tables", name), f"table '{name}': {problem}.")
        pk = t["primary_key"]
        pk = (pk,) if isinstance(pk, str) else tuple(pk)
        tables[name] = TableSpec(
            name=name,
            primary_key=pk,
            source=t.get("source", name),
            time_column=t.get("time_column"),
            exclude_columns=tuple(t.get("exclude_columns", ())),
            keep_columns=tuple(t.get("keep_columns", ())),
            row_limit=t.get("row_limit"),
            description=t.get("description", ""),
            embedding_space=t.get("embedding_space", True),
            relational_space=t.get("relational_space", "auto"),
            cutoff_column=t.get("cutoff_column"),
            drift=dict(t.get("drift") or {}),
            show_personal_data=_shown(t.get("show_personal_data", False)),
        )

    rels = []
    seen_names: set[str] = set()
    for i, r in enumerate(doc.get("relationships", []) or []):
        rel = _parse_relationship(r, tables, lambda msg, i=i: fail(("relationships", i, "join"), msg))
        if rel.name in seen_names:
            fail(("relationships", i, "name"), f"relationship name '{rel.name}' is used twice; give each a unique name.")
        seen_names.add(rel.name)
        rels.append(rel)

    targets = []
    for i, t in enumerate(doc.get("targets", []) or []):
        if t["table"] not in tables:
            fail(("targets", i, "table"), f"target '{t['name']}' names unknown table '{t['table']}'. Declared tables: {sorted(tables)}.")
        if t.get("expression") is not None:
            try:
                parse_scalar(t["expression"], t["table"])
            except ExpressionError as e:
                fail(("targets", i, "expression"), f"target '{t['name']}': expression refused: {e}.")
        targets.append(
            TargetSpec(
                name=t["name"], table=t["table"], column=t["column"], kind=t.get("kind", "auto"),
                positive_label=t.get("positive_label"), expression=t.get("expression"),
                exclude_features=tuple(t.get("exclude_features", ())),
                cost_false_positive=t.get("cost_false_positive"), cost_false_negative=t.get("cost_false_negative"),
                lightgbm_margin=t.get("lightgbm_margin"), note=t.get("note", ""),
            )
        )
    timezone = (doc.get("schedule") or {}).get("timezone", "UTC")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        fail(("schedule", "timezone"), f"unknown time zone {timezone!r}: use an IANA name such as 'UTC' or "
                                       "'Europe/Berlin'.")
    return DatasetSpec(
        name=doc["name"], path=path, warehouse_url=url, warehouse_url_env=wh.get("url_env"),
        warehouse_password_env=wh.get("password_env"), warehouse_schema=wh.get("schema"), tables=tables, relationships=tuple(rels), targets=tuple(targets),
        description=doc.get("description", ""), raw=doc, lines=lines,
        schedule_cron=(doc.get("schedule") or {}).get("cron", DEFAULT_CRON),
        schedule_timezone=timezone,
        drift=dict(doc.get("drift") or {}), retention=doc.get("retention", 3),
    )


def _warehouse_url(wh: dict, fail) -> str:
    """The warehouse URL: written in the spec without a password, or read from ``url_env``."""
    if "url" in wh and "url_env" in wh:
        fail(("warehouse", "url_env"), "give warehouse.url or warehouse.url_env, not both.")
    if "url_env" in wh:
        try:
            return from_environment(wh["url_env"], "The warehouse URL (warehouse.url_env)")
        except SecretError as e:
            fail(("warehouse", "url_env"), str(e))
    url = wh.get("url", DEFAULT_URL)
    if url_password(url) or secret_parameters(url):
        fail(("warehouse", "url"), f"warehouse.url {display_url(url)} carries a password or token: a spec file "
                                   "is no place for a secret. Name the environment variable that holds the password "
                                   "in warehouse.password_env (or put the whole URL in one and name it in "
                                   "warehouse.url_env), and remove it from the URL.")
    return url


def _shown(value) -> bool | tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else bool(value)


def _parse_relationship(r: dict, tables: dict[str, TableSpec], fail) -> RelationshipSpec:
    cond = r["join"]
    try:
        parsed = parse_join(cond)
    except JoinSyntaxError as e:
        fail(str(e))
    for t in (parsed.left, parsed.right):
        if t not in tables:
            fail(f"join condition {cond!r} names unknown table '{t}'. Declared tables: {sorted(tables)}.")
    rel = parsed.relationship(r["cardinality"], r.get("name") or f"{parsed.left}__{parsed.right}", cond)
    return RelationshipSpec(
        **{f.name: getattr(rel, f.name) for f in fields(Relationship)},
        coverage_warn_below=r.get("coverage_warn_below", 0.95),
        coverage_error_below=r.get("coverage_error_below", 0.5),
        max_key_null_ratio=r.get("max_key_null_ratio", 0.05), note=r.get("note", ""), lookup=bool(r.get("lookup", False)),
        lookup_columns=tuple(r["lookup"]) if isinstance(r.get("lookup"), list) else (),
    )


def check_columns(spec: DatasetSpec, columns: dict[str, list[str]], only: str | None = None) -> None:
    """Check every column the spec names against the warehouse's real columns.

    ``columns`` maps table name → its column names; ``only`` restricts the check to one table.
    Raises SpecError naming the table, column and the spec line, with the closest existing names.
    """
    import difflib

    lines = spec.lines
    problems = []

    def need(table: str, col: str, where: tuple, what: str):
        if only is not None and table != only:
            return
        have = columns.get(table)
        if have is None:
            problems.append(f"{_where(lines, where)}: table '{table}' ({spec.tables[table].source}) was not found in the warehouse.")
        elif col not in have:
            close = difflib.get_close_matches(col, have, n=3)
            hint = f" Did you mean {close}?" if close else f" Columns: {have}."
            problems.append(f"{_where(lines, where)}: {what} names unknown column '{table}.{col}'.{hint}")

    for name, t in spec.tables.items():
        for c in t.primary_key:
            need(name, c, ("tables", name, "primary_key"), "primary_key")
        if t.time_column:
            need(name, t.time_column, ("tables", name, "time_column"), "time_column")
        if t.cutoff_column:
            need(name, t.cutoff_column, ("tables", name, "cutoff_column"), "cutoff_column")
        for c in t.exclude_columns + t.keep_columns:
            need(name, c, ("tables", name), "column list")
        for c in t.show_personal_data if isinstance(t.show_personal_data, tuple) else ():
            need(name, c, ("tables", name, "show_personal_data"), "show_personal_data")
    for i, r in enumerate(spec.relationships):
        for c in r.lookup_columns:
            need(r.parent, c, ("relationships", i, "lookup"), "lookup")
        for c, p in r.pairs:
            need(r.child, c, ("relationships", i, "join"), f"relationship '{r.name}'")
            need(r.parent, p, ("relationships", i, "join"), f"relationship '{r.name}'")
    for i, t in enumerate(spec.targets):
        if not t.expression:
            need(t.table, t.column, ("targets", i, "column"), f"target '{t.name}'")
        for c in columns_read(t.expression, t.table) if t.expression else ():
            need(t.table, c, ("targets", i, "expression"), f"target '{t.name}' expression")
    seen = set()
    problems = [p for p in problems if not (p in seen or seen.add(p))]
    if problems:
        raise SpecError(f"{spec.path}: the spec does not match the warehouse:\n  " + "\n  ".join(problems))
