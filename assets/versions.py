"""Dagster code and data versions. Model assets: the model code and the asset's part of the spec as
code version, their content-addressed key as data version. The data-quality assets (snapshot,
profile, filtered rows, join reports): a hash of their content as data version, so an unchanged
warehouse — or a code edit that changes nothing they compute — makes nothing downstream look
stale; their code version is the pipeline code and their part of the spec."""

from __future__ import annotations

import warnings

import dagster as dg
import pandas as pd

from featrix_pipeline.fingerprint import digest, frame_fingerprint, pipeline_code_version, target_identity
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


def content_output(value, metadata: dict) -> dg.Output:
    """An output with a hash of its content as its data version (a frame's rows and columns, or a
    JSON-able value), so the same content is the same version whatever code or run produced it."""
    version = frame_fingerprint(value)["hash"] if isinstance(value, pd.DataFrame) else digest(value)
    return _output(value, version, metadata)


def versioned_output(summary: dict, metadata: dict) -> dg.Output:
    """The asset's output with its content-addressed key as its Dagster data version (so the UI shows
    which downstream assets are stale). Data versions on outputs are a beta Dagster API: its warning is
    noise for a user reading the run log."""
    return _output(summary, summary["key"], metadata)
