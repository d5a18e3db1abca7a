"""The human-readable data-quality report of a run: joins, column filtering, expectation suites.

Rendered once as markdown (shown in the Dagster UI as asset metadata) and written to disk as
``report.md`` and a standalone ``report.html``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from featrix_pipeline.secrets import display_url
from featrix_pipeline.columns import decide_columns
from featrix_pipeline.spec import DatasetSpec

ICON = {True: "✓", "WARN": "⚠", "ERROR": "✗"}


def _check_icon(check: dict) -> str:
    return ICON[True] if check["passed"] else ICON.get(check["severity"], "✗")


def summary_markdown(spec: DatasetSpec, joins: dict[str, dict], profiles: dict[str, dict],
                     suites: dict[str, list[dict]] | None = None, run_id: str = "") -> str:
    """Whole-run markdown. ``joins``: relationship → {"report": JoinReport.to_dict(), "markdown": ...};
    ``profiles``: table → profile dict; ``suites``: table → expectation outcomes (dicts)."""
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Data-quality report — {spec.name}", "",
             f"Spec `{spec.path}` · warehouse `{display_url(spec.warehouse_url)}` · {when}" + (f" · run `{run_id}`" if run_id else ""), ""]
    if joins:
        lines += ["## Joins", "", "| relationship | condition | coverage | declared → observed | checks |",
                  "|---|---|---|---|---|"]
        for name, j in joins.items():
            r = j["report"]
            checks = " ".join(f"{_check_icon(c)} {c['name']}" for c in r["checks"])
            lines.append(f"| {name} | `{r['condition']}` | {r['coverage']:.1%} | "
                         f"{r['declared_cardinality']} → {r['observed_cardinality']} | {checks} |")
        lines.append("")
    decisions = {table: decide_columns(spec, table, prof) for table, prof in profiles.items()}
    lines += ["## Tables", "", "| table | rows | columns | kept | excluded | suite |", "|---|---|---|---|---|---|"]
    for table, prof in profiles.items():
        dec = decisions[table]
        excluded = [c for c, d in dec.items() if not d["keep"]]
        suite = (suites or {}).get(table)
        suite_txt = "—" if suite is None else f"{sum(o['success'] for o in suite)}/{len(suite)} passed"
        lines.append(f"| {table} | {prof['rows']:,} | {len(dec)} | {len(dec) - len(excluded)} | "
                     f"{', '.join(excluded) or '—'} | {suite_txt} |")
    lines.append("")
    for table, prof in profiles.items():
        lines += [f"### {table}: column decisions", "", "| column | type | role | null | unique | decision |",
                  "|---|---|---|---|---|---|"]
        dec = decisions[table]
        for c, col in prof["columns"].items():
            d = dec[c]
            verdict = "kept" if d["keep"] and d["kind"] == "kept" else d["reason"].replace("|", "/").replace("\n", " ")
            lines.append(f"| {c} | {col['semantic_type']} | {d['role']} | {col['null_ratio']:.1%} | "
                         f"{col['unique_ratio']:.1%} | {'✓' if d['keep'] else '✗'} {verdict} |")
        failed = [o for o in (suites or {}).get(table, []) if not o["success"]]
        if failed:
            lines += ["", f"Failed expectations in `{table}`:", ""]
            lines += [f"- ✗ {o['why']} — {o['unexpected_count']:,} rows ({o['unexpected_percent']:.2f}%); "
                      f"e.g. {o['examples'][:2]}" for o in failed]
        lines.append("")
    if joins:
        lines += ["## Join details", ""]
        for j in joins.values():
            lines += [j["markdown"], ""]
    return "\n".join(lines)


def refresh_report(spec: DatasetSpec, store_dir: Path, folder: Path, run_id: str = "") -> tuple[str, Path, Path]:
    """Rebuild the report from every profile and join report in the artifact store.

    Called at the end of each profile and join-report asset, so the report on disk is complete
    once the last of them finishes — including when a blocking check stops the rest of the graph.
    """
    import json

    def load(*parts: str) -> dict | None:
        p = store_dir.joinpath(*parts).with_suffix(".json")
        return json.loads(p.read_text()) if p.exists() else None

    profiles = {t: p for t in spec.tables if (p := load(t, "profile"))}
    joins = {r.name: j for r in spec.relationships if (j := load(r.name, "join_report"))}
    suites = {t: p["expectations"] for t, p in profiles.items() if "expectations" in p}
    md = summary_markdown(spec, joins, profiles, suites, run_id)
    return (md, *write_report(md, folder))


def _atomic_write(path: Path, text: str) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_report(markdown: str, folder: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and a standalone ``report.html`` (atomically); return both paths."""
    import mistune

    folder.mkdir(parents=True, exist_ok=True)
    md_path, html_path = folder / "report.md", folder / "report.html"
    _atomic_write(md_path, markdown)
    body = mistune.create_markdown(plugins=["table"])(markdown)
    _atomic_write(html_path, 
        "<!doctype html><html><head><meta charset='utf-8'><title>Data-quality report</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left;vertical-align:top}th{background:#f3f3f3}code{background:#f6f6f6;padding:1px 3px}"
        "</style></head><body>" + body + "</body></html>")
    return md_path, html_path
