"""Run settings: resource fields from environment variables (dg.EnvVar), one FitSettings for every
model step, and a clear message for a malformed value."""

from __future__ import annotations

import dagster as dg
import pytest

from featrix_pipeline.resources import ModelSettings, build_model_settings
from featrix_pipeline.settings import DEFAULT_LIGHTGBM_MARGIN, FitSettings


def _resolved(resource: ModelSettings) -> FitSettings:
    """The settings an asset sees: the resource as Dagster resolves it when a run starts."""
    seen = []

    @dg.asset
    def probe(model_settings: ModelSettings):
        seen.append(model_settings.fit_settings())

    dg.materialize([probe], resources={"model_settings": resource})
    return seen[0]


def test_fields_come_from_environment_variables_when_set(monkeypatch):
    monkeypatch.setenv("FEATRIX_TIME_BUDGET_S", "7")
    monkeypatch.setenv("FEATRIX_SEED", "3")
    monkeypatch.setenv("FEATRIX_LIGHTGBM_MARGIN", "0.05")
    monkeypatch.delenv("FEATRIX_TORCH_THREADS", raising=False)
    resource = build_model_settings()
    # read when a run starts, not when the code location loads (and never shown in the UI)
    assert type(resource.seed).__name__ == "IntEnvVar" and isinstance(resource.lightgbm_margin, dg.EnvVar)
    assert resource.threads == 1
    settings = _resolved(resource)
    assert settings == FitSettings(time_budget_s=7.0, seed=3, threads=1, lightgbm_margin=0.05)


def test_unset_variables_leave_the_defaults():
    settings = _resolved(build_model_settings(environ={}))
    assert settings == FitSettings()
    assert settings.margin_for(None) == DEFAULT_LIGHTGBM_MARGIN and settings.margin_for(0.1) == 0.1
    assert FitSettings(lightgbm_margin=0.05).margin_for(0.1) == 0.05  # the run's override wins


def test_a_malformed_margin_is_named():
    with pytest.raises(dg.Failure, match="FEATRIX_LIGHTGBM_MARGIN.*decimal"):
        ModelSettings(lightgbm_margin="five percent").fit_settings()
