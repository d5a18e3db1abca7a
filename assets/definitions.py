"""The Dagster code location: every asset, check and resource built from one dataset spec.

The spec comes from $FEATRIX_SPEC (default: schemas/datasets/nycflights13.yaml), so the same code
runs on any warehouse and spec without code changes.
"""

from __future__ import annotations

import os

import dagster as dg

from assets.joins import build_join_assets
from assets.predictors import build_predictor_assets
from assets.relational import build_relational_assets
from assets.spaces import build_space_assets
from assets.tables import build_table_assets
from featrix_pipeline.resources import ModelSettings, WarehouseResource
from featrix_pipeline.spec import DatasetSpec, load_spec
from featrix_pipeline.store import ParquetJsonIOManager, default_store_dir, reports_dir


def build_assets(spec: DatasetSpec) -> list:
    store, reports = default_store_dir(spec.name), reports_dir(spec.name)
    return (build_table_assets(spec, store, reports) + build_join_assets(spec, store, reports)
            + build_space_assets(spec, store) + build_relational_assets(spec, store) + build_predictor_assets(spec, store))


def build_resources(spec: DatasetSpec) -> dict:
    return {
        "io_manager": ParquetJsonIOManager(base_dir=str(default_store_dir(spec.name))),
        "warehouse": WarehouseResource(url=spec.warehouse_url, db_schema=spec.warehouse_schema),
        "model_settings": ModelSettings(
            time_budget_s=float(os.environ["FEATRIX_TIME_BUDGET_S"]) if os.environ.get("FEATRIX_TIME_BUDGET_S") else None,
            threads=int(os.environ.get("FEATRIX_TORCH_THREADS", "1")),
            lightgbm_margin=float(os.environ["FEATRIX_LIGHTGBM_MARGIN"]) if os.environ.get("FEATRIX_LIGHTGBM_MARGIN") else None),
    }


def build_definitions(spec: DatasetSpec) -> dg.Definitions:
    return dg.Definitions(assets=build_assets(spec), resources=build_resources(spec))


defs = build_definitions(load_spec())
