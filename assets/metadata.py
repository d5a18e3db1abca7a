"""Metadata shown in the UI for tables, trained models and their figures."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from featrix_pipeline import accounting
from featrix_pipeline.figures import inline_markdown


def table_metadata(df: pd.DataFrame) -> dict:
    """Row count, column schema and a ten-row preview of a table."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in df.dtypes.items()])
    return {"dagster/row_count": len(df), "dagster/column_schema": schema,
            "preview": dg.MetadataValue.md(df.head(10).to_markdown(index=False))}


def column_lineage(columns, source) -> dg.TableColumnLineage:
    """``dagster/column_lineage``: each column ← ``source(column)`` = (asset key, column) it is read from."""
    deps = {}
    for c in columns:
        key, col = source(c)
        deps[str(c)] = [dg.TableColumnDep(asset_key=dg.AssetKey(list(key)), column_name=str(col))]
    return dg.TableColumnLineage(deps_by_column=deps)


def config_table(summary: dict) -> dg.MetadataValue:
    """Every training setting with its value and the reason it was chosen."""
    return dg.MetadataValue.md(pd.DataFrame(
        [{"setting": k, "value": summary["config"].get(k), "why": v} for k, v in summary["reasons"].items()]
    ).to_markdown(index=False))


def figure_metadata(figures: dict[str, str]) -> dict:
    """``figure_<name>``: each PNG figure shown as an image in the UI (``figure_<name>_file``: where it
    lies); a figure that is not a PNG (the interactive 3D sphere, an HTML page) is named by its path."""
    out = {}
    for name, path in figures.items():
        image = inline_markdown(path, name.replace("_", " ")) if str(path).endswith(".png") else None
        if image:
            out[f"figure_{name}"] = dg.MetadataValue.md(image)
        out[f"figure_{name}_file" if image else f"figure_{name}"] = dg.MetadataValue.path(path)
    return out


def numbers(prefix: str, values: dict | None) -> dict:
    """``<prefix>_<name>`` top-level float entries (the UI plots a number entry over runs; a JSON
    one it does not), for the finite numbers among ``values``."""
    import math

    return {f"{prefix}_{k}": float(v) for k, v in (values or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def version_metadata(summary: dict) -> dict:
    """Which content-addressed version an asset holds, and whether this run trained or reused it."""
    how = "reused" if summary.get("reused") else "trained"
    return {"version": summary["key"],
            "reuse": f"{how} {summary['key']}, trained {summary.get('trained_at')} by run {summary.get('trained_by_run')}"}


def space_metadata(summary: dict) -> dict:
    """What every space asset (table or relational) shows: its folder, size, epochs, losses and figures
    first, then the long entries (settings, columns)."""
    return {**version_metadata(summary), "path": dg.MetadataValue.path(summary["path"]), "d_model": summary["d_model"],
            "epochs_run": summary["epochs_run"], "fit_seconds": float(summary["fit_seconds"]),
            **numbers("final", summary.get("final")), **figure_metadata(summary["figures"]),
            **_split_kl(summary.get("split_kl")), **relationship_metadata(summary.get("relationships")),
            "config": config_table(summary), "columns": dg.MetadataValue.json(summary["columns"])}


def relationship_metadata(found: dict | None) -> dict:
    """The relationship report as a table, and the self-validation's ρ and warnings as numbers and JSON."""
    if not found:
        return {}
    validation = found.get("validation", {})
    out = {"relationship_pairs": dg.MetadataValue.md(pd.DataFrame(found["pairs"]).to_markdown(index=False)),
           "relationship_validation": dg.MetadataValue.json(validation)}
    if validation.get("spearman_rho") is not None:
        out["relationship_spearman_rho"] = dg.MetadataValue.float(float(validation["spearman_rho"]))
    return out


def _split_kl(kl: dict | None) -> dict:
    """The train/validation split's per-column KL (its largest as a number the UI plots)."""
    if not kl:
        return {}
    return {"split_kl_max": float(max(kl.values())), "split_kl": dg.MetadataValue.json(kl)}


def row_metadata(counted: dict | None) -> dict:
    """``rows_in``, ``rows_used``, ``rows_excluded`` and ``row_accounting`` (every use and every reason
    for leaving rows out, as a table) of a model step; a note when a stored version predates them."""
    if not counted:
        return {"row_accounting": dg.MetadataValue.text("not recorded: a version trained before rows were accounted")}
    return {"rows_in": counted["rows_in"], "rows_used": counted["rows_used"], "rows_excluded": counted["rows_excluded"],
            "row_accounting": dg.MetadataValue.md(accounting.markdown(counted))}
