"""Dagster code and data versions. Model assets: the model code and the asset's part of the spec as
code version, their content-addressed key as data version. A table snapshot: a hash of its content
as data version, so an unchanged warehouse does not make everything downstream look stale; the
data-quality assets computed from it carry the pipeline code and their part of the spec, and Dagster
derives their data versions from those and their inputs'."""

from __future__ import annotations

import warnings

import dagster as dg

from featrix_pipeline.fingerprint import digest, pipeline_code_version, target_identity
from featrix_pipeline.fingerprint import model_code_version as model_code


def model_code_version(table_plan, target=None) -> str:
    return digest({"code": model_code(), "spec": table_plan.describe(),
                   "target": target_identity(target) if target is not None else None})


def quality_code_version(part) -> str:
    """Code version of a data-quality asset: the pipeline code and ``part`` (its part of the spec)."""
    return digest({"code": pipeline_code_version(), "spec": part})


def _output(value, version: str, metadata: dict) -> dg.Output:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.Output(value, data_version=dg.DataVersion(version), metadata=metadata)


def snapshot_output(df, fingerprint: str, metadata: dict) -> dg.Output:
    """A table snapshot with the hash of its content as its data version."""
    return _output(df, fingerprint, metadata)


def versioned_output(summary: dict, metadata: dict) -> dg.Output:
    """The asset's output with its content-addressed key as its Dagster data version (so the UI shows
    which downstream assets are stale). Data versions on outputs are a beta Dagster API: its warning is
    noise for a user reading the run log."""
    return _output(summary, summary["key"], metadata)
