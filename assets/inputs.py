"""Inputs shared by the model assets: the filtered rows of the other tables a model reads."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from featrix_pipeline.topology import Topology

SUFFIX = "_rows"


def asset_in(key) -> dg.AssetIn:
    """An input from the asset with the topology's key ``key`` (a tuple of strings)."""
    return dg.AssetIn(list(key))


def rows_in(topology: Topology, tables) -> dict[str, dg.AssetIn]:
    """Inputs ``<table>_rows`` ← ``<table>/filtered`` for the tables a model reads (lookups, children)."""
    return {f"{t}{SUFFIX}": asset_in(topology[t].key("filtered")) for t in tables}


def rows_of(inputs: dict) -> dict[str, pd.DataFrame]:
    """{table: filtered rows} back from the ``<table>_rows`` inputs of an asset's keyword arguments."""
    return {k[: -len(SUFFIX)]: v for k, v in inputs.items() if k.endswith(SUFFIX)}
