"""Artifact store: where asset values live between steps — Parquet for tables, JSON for reports.

Dagster's default IO manager pickles; this one never does, so every intermediate is readable by
any tool (DuckDB, pandas, jq) and safe to load.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from featrix_model.jsonable import to_jsonable
from featrix_pipeline.locations import featrix_home


def default_store_dir(spec_name: str) -> Path:
    return featrix_home() / "artifacts" / spec_name


def reports_dir(spec_name: str) -> Path:
    return featrix_home() / "reports" / spec_name


STORE = "${store}"  # stands for base_dir in stored JSON, so a store can be moved or copied
MODEL_STAGES = ("embedding_space", "relational_space", "predictor")  # trained only by the retrain job


class ParquetJsonIOManager(dg.ConfigurableIOManager):
    """DataFrames ↔ ``<base_dir>/<asset/key>.parquet``; dicts and lists ↔ ``.json`` (paths inside the
    store are written relative to it, so a store can be moved or copied)."""

    base_dir: str

    def _path(self, context, suffix: str) -> Path:
        return Path(self.base_dir).joinpath(*context.asset_key.path).with_suffix(suffix)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        if isinstance(obj, pd.DataFrame):
            path = self._path(context, ".parquet")
            path.parent.mkdir(parents=True, exist_ok=True)
            obj.to_parquet(path, index=False)
        elif isinstance(obj, (dict, list)):
            path = self._path(context, ".json")
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(to_jsonable(obj), indent=1, default=str)
            path.write_text(text.replace(self._escaped_base(), STORE))
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store a {type(obj).__name__}; "
                            "return a DataFrame or a JSON-able dict.")
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def _escaped_base(self) -> str:
        return json.dumps(str(Path(self.base_dir)))[1:-1]

    def load_input(self, context: dg.InputContext):
        for suffix in (".parquet", ".json"):
            path = self._path(context.upstream_output, suffix) if context.upstream_output else None
            if path is not None and path.exists():
                if suffix == ".parquet":
                    return pd.read_parquet(path)
                return json.loads(path.read_text().replace(STORE, self._escaped_base()))
        name = context.asset_key.to_user_string()
        model = context.asset_key.path[-1] in MODEL_STAGES
        raise dg.Failure(description=(
            f"{name} has not been materialized yet (nothing under {self.base_dir}). "
            + ("The refresh job scores with models it never trains: run the 'retrain' job (or materialize all "
               "assets) once first." if model else "Materialize it first.")))
