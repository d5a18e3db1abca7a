"""Property: whatever text a user hands the spec parser — random text, the demo spec with any value
replaced by any other YAML value, lines deleted or indented wrong — it either returns a spec or
raises one SpecError that names the file; never a traceback from inside YAML, jsonschema, sqlglot
or the dataclasses."""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featrix_pipeline.spec import DatasetSpec, SpecError, parse_spec
from tests.conftest import DEMO_SPEC

GOOD = DEMO_SPEC.read_text()
DOC = yaml.safe_load(GOOD)
PROPERTY = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*path, i))


PATHS = [p for p in _paths(DOC) if p]
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True)
    | st.text(max_size=20) | st.sampled_from(["1; DROP TABLE x", "../../etc/passwd", "a.b.c.d", "read_text('x')",
                                             "flights.x = planes.y OR 1=1", "*", "", "0 6 * * *", "Mars/Base"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=5)


def _outcome(text: str) -> None:
    try:
        spec = parse_spec(text, "prop.yaml")
    except SpecError as e:
        assert "prop.yaml" in str(e), str(e)
        return
    assert isinstance(spec, DatasetSpec)


def _set(doc, path, value):
    doc = json.loads(json.dumps(doc, default=str))
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


@PROPERTY
@given(st.text(max_size=200))
def test_any_text_gives_a_spec_or_one_spec_error(text):
    _outcome(text)


@PROPERTY
@given(st.sampled_from(PATHS), VALUES)
def test_any_value_anywhere_in_the_demo_spec_gives_a_spec_or_one_spec_error(path, value):
    _outcome(yaml.safe_dump(_set(DOC, path, value), allow_unicode=True, sort_keys=False))


@PROPERTY
@given(st.lists(st.integers(0, GOOD.count("\n")), min_size=1, max_size=4, unique=True), st.booleans())
def test_deleted_or_misindented_lines_give_a_spec_or_one_spec_error(lines, indent):
    text = GOOD.splitlines()
    for i in sorted(lines, reverse=True):
        if i < len(text):
            if indent:
                text[i] = " " + text[i]
            else:
                del text[i]
    _outcome("\n".join(text))
