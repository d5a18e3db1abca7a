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
