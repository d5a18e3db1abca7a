"""Inputs shared by the model assets: the filtered rows of the other tables a model reads."""

from __future__ import annotations

import dagster as dg
import pandas as pd

SUFFIX = "_rows"


def rows_in(tables) -> dict[str, dg.AssetIn]:
    """Inputs ``<table>_rows`` ← ``<table>/filtered`` for the tables a model reads (lookups, children)."""
    return {f"{t}{SUFFIX}": dg.AssetIn([t, "filtered"]) for t in tables}


def rows_of(inputs: dict) -> dict[str, pd.DataFrame]:
    """{table: filtered rows} back from the ``<table>_rows`` inputs of an asset's keyword arguments."""
    return {k[: -len(SUFFIX)]: v for k, v in inputs.items() if k.endswith(SUFFIX)}
