"""Dagster code versions of the model assets: the model code and the asset's part of the spec, so
the UI marks a space or predictor stale when either changes (the data's part is its data version)."""

from __future__ import annotations

import warnings

import dagster as dg

from featrix_pipeline.fingerprint import digest, target_identity
from featrix_pipeline.fingerprint import model_code_version as model_code


def model_code_version(table_plan, target=None) -> str:
    return digest({"code": model_code(), "spec": table_plan.describe(),
                   "target": target_identity(target) if target is not None else None})


def versioned_output(summary: dict, metadata: dict) -> dg.Output:
    """The asset's output with its content-addressed key as its Dagster data version (so the UI shows
    which downstream assets are stale). Data versions on outputs are a beta Dagster API: its warning is
    noise for a user reading the run log."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.Output(summary, data_version=dg.DataVersion(summary["key"]), metadata=metadata)
