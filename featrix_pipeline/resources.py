"""Dagster resources wrapping the pipeline's warehouse access."""

from __future__ import annotations

import dagster as dg

from featrix_pipeline.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse named in the dataset spec (DuckDB file, folder of files, or SQLAlchemy URL)."""

    url: str
    db_schema: str | None = None

    def get(self) -> Warehouse:
        return Warehouse(self.url, self.db_schema)


class ModelSettings(dg.ConfigurableResource):
    """Training settings shared by every model asset. ``time_budget_s`` None = automatic (spec §4.4,
    150 s on CPU); ``FEATRIX_TIME_BUDGET_S`` sets it for a whole run."""

    time_budget_s: float | None = None
    seed: int = 0
    threads: int = 1
    predictor_max_rows: int = 50_000
    lightgbm_margin: float | None = None  # run-level override of every target's margin (default 0.02)
