"""The Dagster UI in headless Chromium: ``dagster-webserver`` (no daemon) on a copy of the trained demo
slice, with a fresh DAGSTER_HOME holding the slice's materializations and check results, looked at
page by page as a person would, with a screenshot of each.

What each page proves (every page: the warehouse password, given by ``warehouse.password_env``, is
nowhere in its text or HTML):

- ``/automation``: the refresh schedule and both retrain sensors (``drift_sensor``,
  ``schema_sensor``) are listed — every schedule and sensor the code location has.
- ``/assets/planes/embedding_space``: a trained space's page shows the metadata its materialization
  recorded (every entry's label); a figure recorded as markdown opens ([Show Markdown]) as an image
  drawn from its data URI.
- ``/assets/flights/embedding_space`` (Columns section): the column lineage the space recorded
  (``dagster/column_lineage``: each input column ← the asset and column it is read from) is readable
  there: each column of its ``dagster/column_schema`` is listed with the description "read as <asset>
  column <column>", matching the lineage entry — e.g. ``dest.lat`` read as ``airports/filtered``
  column ``lat``. Filtered to ``dest`` (as a person types into "Filter columns"), the table lists
  the flight's own ``dest`` and the airport columns it looks up. The open-source UI (dagster-webserver
  1.13) draws no column-level lineage: it never shows the ``dagster/column_lineage`` entry (hidden from
  every metadata table), ``?view=lineage&column=…`` is the asset-level graph, and a ``column:``
  selection says "column filtering is available in Dagster+"; the schema's descriptions are where
  a person reads it.
- ``/locations/<repo>/resources/warehouse``: the warehouse resource names the password's
  environment variable, never its value.
- ``/locations/<repo>/asset-groups/planes``: one table's group — every stage of a table with a
  relational space, readable at full size.
- ``/asset-groups?expanded=<each join_report's group>`` (top-to-bottom layout, side panels hidden,
  zoomed to fit; the UI's default node facets, so no descriptions): the global lineage graph with
  the join reports' groups open and every other group collapsed to a box titled with its name.
  Every ``join_report`` node (labelled just "join_report") lies inside exactly one open group box,
  titled — drawn in the viewport — with the group GraphQL gives that asset, which is named after
  its relationship (``flights_weather``; ``<name>_join`` where a table has the name); the boxes of
  the tables each report reads are there too, its edges coming from them. The box title is what
  tells a person which join a node is.
- ``/asset-groups?expanded=<every group>`` (same view settings): the global lineage graph with
  every group open shows a node for every asset, so every stage — raw, profile, filtered,
  join_report, embedding_space, row_embeddings, relational_space, predictor, predictions, drift —
  as often as the code location has it; each join_report, predictor and predictions node lies
  inside the one group box titled with its relationship or target (``arr_delay15``;
  ``<name>_predictor`` where a table has the name). The UI renders only the nodes inside its
  viewport, so the graph is zoomed until all of it lies inside: then every label is in the DOM
  (each node is labelled with the last component of its key).

Which group a node sits in is read from the DOM: a group box is a ``foreignObject`` of class
``group`` whose header holds the group's name (a ``[data-tooltip]`` element), an asset node a
``foreignObject`` holding its ``AssetNode_assetName`` label; a node is in a box when its rectangle
lies inside the box's (:data:`tests.browser.NODE_GROUPS`). The node set comes from GraphQL's
``assetNodes`` (``groupName``), no group name is written here.

Screenshots go to ``$FEATRIX_SCREENSHOTS`` (``scripts/screenshots.sh``: docs/screenshots) or
``tmp_path/screenshots``; each must be a PNG of the window's size with more than a few colours.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from tests.browser import HEIGHT, REPO, WIDTH, Browser, Webserver, poll, require_chromium

STAGES = ("raw", "profile", "filtered", "join_report", "embedding_space", "row_embeddings", "relational_space",
          "predictor", "predictions", "drift")
AUTOMATIONS = ("refresh_schedule", "drift_sensor", "schema_sensor")  # assets/schedules.py, assets/sensors.py
SECRET_ENV, SECRET = "FEATRIX_BROWSER_TEST_PASSWORD", "s3cr3t-browser-sentinel-6d1f"
# Stages whose group is named after what they belong to (key [name, stage]): a relationship's
# join_report, a target's predictor and predictions; the suffix a group name takes where a table
# already has the name.
NAMED_GROUPS = {"join_report": "_join", "predictor": "_predictor", "predictions": "_predictor"}
DEFINITIONS = """{ assetNodes { assetKey { path } groupName dependencyKeys { path } }
  repositoriesOrError { ... on RepositoryConnection { nodes { name location { name }
    schedules { name } sensors { name } } } } }"""
# Click "[Show Markdown]" in the metadata table's row for KEY (true if there was one).
SHOW_MARKDOWN = """(() => {
  const row = Array.from(document.querySelectorAll('tr'))
    .find(r => r.cells.length && r.cells[0].innerText.trim() === KEY);
  const link = row && Array.from(row.querySelectorAll('*'))
    .find(e => !e.children.length && e.innerText.trim() === '[Show Markdown]');
  if (link) link.click();
  return !!link;
})()"""
# An image from a data: URI in an open dialog, loaded and drawn at a readable size.
IMAGE_DRAWN = """Array.from(document.querySelectorAll('[role=dialog] img, .bp5-dialog img, .bp4-dialog img'))
  .some(i => i.src.startsWith('data:image/png') && i.complete && i.naturalWidth > 0
    && i.getBoundingClientRect().width > 200)"""
# Scroll the first element whose own text is KEY (a section's header) to the top of its scroll area.
SCROLL_TO = """(() => { const h = Array.from(document.querySelectorAll('body *'))
  .find(e => !e.children.length && e.textContent.trim() === KEY);
  if (h) h.scrollIntoView({block: 'start'}); return !!h; })()"""
# The overview's Columns table (the one headed "Column name"): each listed column -> its description.
COLUMNS_TABLE = """(() => {
  const table = Array.from(document.querySelectorAll('table'))
    .find(t => t.rows.length && t.rows[0].cells.length && t.rows[0].cells[0].innerText.trim() === 'Column name');
  if (!table) return null;
  return Array.from(table.rows).slice(1).filter(r => r.cells.length >= 3)
    .map(r => [r.cells[0].innerText.trim(), r.cells[2].innerText.trim()]);
})()"""
LINEAGE_SPACE, LINEAGE_COLUMN = ("flights", "embedding_space"), "dest.lat"  # dest.lat <- airports/filtered lat
MIN_COLOURS = 64  # a blank or half-drawn page has a handful; a rendered one has hundreds (anti-aliased text)


@pytest.fixture(scope="session")
def chromium():
    """Skips (or, with FEATRIX_REQUIRE_BROWSER=1, fails) before the slice is trained, not after."""
    return require_chromium()


def _record(dagster_home: Path, trained) -> None:
    """The trained slice's materializations and check results, into the test's run storage (the slice
    was materialized on an ephemeral instance), so that the UI shows assets as a trained slice."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for event in trained.result.get_asset_materialization_events():
            instance.report_runless_asset_event(event.materialization)
        for evaluation in trained.checks.values():
            instance.report_runless_asset_event(evaluation)


@pytest.fixture()
def webserver(chromium, trained_slice, slice_home, tmp_path):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    _record(dagster_home, trained_slice)
    spec, n = re.subn(r"(\nwarehouse:\n  url: [^\n]*\n)", rf"\1  password_env: {SECRET_ENV}\n", slice_home.read_text(),
                      count=1)
    assert n == 1, "the slice's spec has no 'warehouse: url:' to add a password to"
    slice_home.write_text(spec)
    env = {"DAGSTER_HOME": str(dagster_home), "FEATRIX_SPEC": str(slice_home), "FEATRIX_HOME": str(slice_home.parent),
           SECRET_ENV: SECRET}
    with Webserver(env, tmp_path / "dagster_webserver.log") as server:
        yield server


@pytest.fixture()
def screenshots(tmp_path) -> Path:
    folder = os.environ.get("FEATRIX_SCREENSHOTS")
    return (REPO / folder if folder else tmp_path / "screenshots").resolve()


def _assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (WIDTH, HEIGHT), (path, image.format, image.size)
        colours = image.convert("RGB").getcolors(maxcolors=WIDTH * HEIGHT)
    assert len(colours) > MIN_COLOURS, f"{path}: {len(colours)} colours, a blank page?"


def _wait_for_columns(browser: Browser, what: str, wanted: dict[str, str]) -> dict[str, str]:
    """Poll until the Columns table lists exactly ``wanted`` (column -> description), in any order."""
    last = {}

    def probe():
        rows = browser.eval(COLUMNS_TABLE)
        last["rows"] = rows
        return rows is not None and len(rows) == len(wanted) and dict(rows) == wanted and dict(rows)
    try:
        return poll(what, probe)
    except pytest.fail.Exception:
        rows = dict(last.get("rows") or [])
        pytest.fail(f"{what}: the Columns table differs from {wanted}: missing or different "
                    f"{ {c: rows.get(c) for c in wanted if rows.get(c) != wanted[c]} }, "
                    f"extra {sorted(set(rows) - set(wanted))}")


def _named_groups(nodes: list[dict]) -> Counter:
    """{(group, stage): how many} of the join_report / predictor / predictions nodes, after checking
    that each such group is named after the relationship or target its assets belong to and holds
    only those."""
    tables = {n["assetKey"]["path"][0] for n in nodes if n["assetKey"]["path"][-1] == "raw"}
    members: dict[str, set] = {}
    for n in nodes:
        members.setdefault(n["groupName"], set()).add(n["assetKey"]["path"][0])
    out = Counter()
    for n in nodes:
        name, stage = n["assetKey"]["path"][0], n["assetKey"]["path"][-1]
        if stage not in NAMED_GROUPS:
            continue
        assert n["groupName"] == (name + NAMED_GROUPS[stage] if name in tables else name), \
            f"{'/'.join(n['assetKey']['path'])} is in group {n['groupName']!r}, not one named after {name!r}"
        assert members[n["groupName"]] == {name}, f"group {n['groupName']!r} holds {sorted(members[n['groupName']])}"
        out[n["groupName"], stage] += 1
    return out


def _wait_for_boxes(browser: Browser, what: str, wanted: Counter) -> None:
    """Poll until the graph draws, for each (group, stage) in ``wanted``, that many nodes labelled
    ``stage``, each inside exactly one group box, titled ``group`` with the title in the viewport —
    and no other node with one of those labels."""
    labels, last = {stage for _, stage in wanted}, {}

    def probe():
        drawn = browser.node_groups()
        if drawn is None:
            return None
        ours = [(label, titles, shown) for label, titles, shown in drawn if label in labels]
        last["ours"] = ours
        boxed = Counter((titles[0], label) for label, titles, shown in ours if len(titles) == 1 and all(shown))
        return len(ours) == sum(wanted.values()) and boxed == wanted
    try:
        poll(what, probe)
    except pytest.fail.Exception as e:
        pytest.fail(f"{what}: wanted nodes in one box each, titled {dict(wanted)}; drawn (label, titles of "
                    f"the boxes around it, each title in view): {last.get('ours')} ({e.msg})")


def test_the_ui_shows_every_stage_the_schedule_and_sensors_and_a_trained_space(chromium, webserver, trained_slice,
                                                                               screenshots):
    data = webserver.graphql(DEFINITIONS)
    [repo] = data["repositoriesOrError"]["nodes"]
    repo_path = f"{repo['name']}@{repo['location']['name']}"
    nodes = data["assetNodes"]
    stages = Counter(n["assetKey"]["path"][-1] for n in nodes)
    assert set(STAGES) <= set(stages), f"the code location lacks stages {set(STAGES) - set(stages)}"
    groups = sorted({n["groupName"] for n in nodes})
    by_key = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes}
    automations = {s["name"] for s in repo["schedules"]} | {s["name"] for s in repo["sensors"]}
    assert set(AUTOMATIONS) <= automations
    spaces = [n["assetKey"]["path"] for n in nodes if n["assetKey"]["path"][-1] == "embedding_space"]
    space = ["planes", "embedding_space"] if ["planes", "embedding_space"] in spaces else spaces[0]
    [recorded] = [e.materialization for e in trained_slice.result.get_asset_materialization_events()
                  if e.asset_key.path == space]
    assert list(LINEAGE_SPACE) in spaces, f"no {'/'.join(LINEAGE_SPACE)} among {spaces}"
    [space_mat] = [e.materialization for e in trained_slice.result.get_asset_materialization_events()
                   if e.asset_key.path == list(LINEAGE_SPACE)]
    lineage = space_mat.metadata["dagster/column_lineage"].value.deps_by_column
    assert [(d.asset_key.path, d.column_name) for d in lineage[LINEAGE_COLUMN]] == [(["airports", "filtered"], "lat")]
    schema = [c.name for c in space_mat.metadata["dagster/column_schema"].value.columns]
    assert schema == list(lineage), "the space's column schema and column lineage list different columns"
    # what the Columns section must show: each column with the source its lineage entry records
    described = {c: " ".join(f"read as {'/'.join(d.asset_key.path)} column {d.column_name}" for d in deps)
                 for c, deps in lineage.items()}
    base, shot, seen = webserver.url, {}, []

    def keep(name: str, browser: Browser, ops=()) -> None:
        shot[name] = browser.screenshot(screenshots / f"{name}.png", ops)
        seen.append((browser.eval("location.href"), browser.text() + browser.html()))

    with Browser() as browser:
        browser.goto(f"{base}/automation")
        browser.wait_for_text("the automation page", sorted(automations))
        keep("automation", browser, ops=("SensorStateQuery", "ScheduleStateQuery"))

        browser.goto(f"{base}/assets/{'/'.join(space)}")
        labels = [k for k in recorded.metadata if not k.startswith("dagster/")]
        browser.wait_for_text(f"the page of {'/'.join(space)} with its materialization's metadata", labels)
        browser.eval(SCROLL_TO.replace("KEY", json.dumps("Metadata")))
        keep(f"asset-{'-'.join(space)}", browser)
        figures = [k for k, v in recorded.metadata.items()
                   if k.startswith("figure_") and isinstance(v, dg.MarkdownMetadataValue)]
        if figures:  # a figure embedded as an image: open it as a person would ([Show Markdown]) and see it drawn
            opened = browser.eval(SHOW_MARKDOWN.replace("KEY", json.dumps(figures[0])))
            assert opened, f"no [Show Markdown] for {figures[0]}"
            poll(f"the image of {figures[0]} drawn", lambda: browser.eval(IMAGE_DRAWN))
            keep(f"asset-{'-'.join(space)}-{figures[0]}", browser)

        # column lineage: every column of the space listed with the asset and column it is read from
        browser.goto(f"{base}/assets/{'/'.join(LINEAGE_SPACE)}")
        browser.wait_for_text(f"the Columns section of {'/'.join(LINEAGE_SPACE)}", ["Columns", *described])
        shown = _wait_for_columns(browser, f"every column of {'/'.join(LINEAGE_SPACE)} with its source", described)
        assert shown[LINEAGE_COLUMN] == "read as airports/filtered column lat", shown
        browser.type_into('input[placeholder="Filter columns"]', "dest")  # as a person looks for dest.lat
        _wait_for_columns(browser, "the columns filtered to dest", {c: d for c, d in described.items() if "dest" in c})
        assert browser.eval(SCROLL_TO.replace("KEY", json.dumps("Columns")))
        keep("column-lineage", browser)

        browser.goto(f"{base}/locations/{repo_path}/resources/warehouse")
        browser.wait_for_text("the warehouse resource's configuration", ["url", SECRET_ENV])
        seen.append((browser.eval("location.href"), browser.text() + browser.html()))

        planes = Counter(n["assetKey"]["path"][-1] for n in nodes if n["groupName"] == "planes")
        browser.show_whole_graph(f"{base}/locations/{repo_path}/asset-groups/planes")
        browser.wait_for_labels("every stage of the planes group", planes)
        keep("lineage-planes", browser, ops=("AssetGraphLiveQuery",))

        # the layout a person picks in the graph's toolbar: top to bottom, so groups sit side by side in a
        # wide window; the node facets stay the UI's defaults (no descriptions): the box titles tell
        named = _named_groups(nodes)
        browser.set_storage(**{"asset-graph-direction": "vertical"})
        joins = [n for n in nodes if n["assetKey"]["path"][-1] == "join_report"]
        join_groups = sorted({n["groupName"] for n in joins})
        assert join_groups, "the code location has no join_report"
        # the groups of the tables the reports read, collapsed to boxes titled with their names
        read = {by_key["/".join(d["path"])] for n in joins for d in n["dependencyKeys"]} - set(join_groups)
        browser.show_whole_graph(f"{base}/asset-groups?expanded={','.join(f'global@global:{g}' for g in join_groups)}",
                                 wide=True)
        browser.wait_for_labels("a join_report node per relationship, and the groups of the tables they read",
                                {"join_report": len(joins), **{g: 1 for g in read}})
        _wait_for_boxes(browser, "each join_report in the box of its relationship",
                        Counter({k: v for k, v in named.items() if k[1] == "join_report"}))
        keep("lineage-joins", browser, ops=("AssetGraphLiveQuery",))

        expanded = ",".join(f"global@global:{g}" for g in groups)
        browser.show_whole_graph(f"{base}/asset-groups?expanded={expanded}", wide=True)
        browser.wait_for_labels("a node for every asset in the global lineage graph", dict(stages))
        _wait_for_boxes(browser, "each join_report, predictor and predictions node in the box of its "
                        "relationship or target", named)
        keep("lineage-global", browser, ops=("AssetGraphLiveQuery",))

    for name, path in shot.items():
        _assert_png(path)
    leaks = [url for url, page in seen if SECRET in page]
    assert not leaks, f"the warehouse password is shown on {leaks}"
