"""Dagster resources: the warehouse and the model settings of a run.

Fields can come from environment variables (``dg.EnvVar``: resolved when a run starts, never shown
in the UI); ``build_model_settings`` uses a variable that is set when the code location loads, and
the default otherwise.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import PrivateAttr

from featrix_pipeline.secrets import MASK, display_url
from featrix_pipeline.settings import FitSettings
from featrix_pipeline.warehouse import Warehouse

# field → environment variable (int fields take whole numbers)
SETTINGS_ENV = {"time_budget_s": "FEATRIX_TIME_BUDGET_S", "seed": "FEATRIX_SEED", "threads": "FEATRIX_TORCH_THREADS",
                "predictor_max_rows": "FEATRIX_PREDICTOR_MAX_ROWS", "lightgbm_margin": "FEATRIX_LIGHTGBM_MARGIN"}


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse named in the dataset spec (DuckDB file, folder of files, or SQLAlchemy URL).

    ``url`` never carries a password: the spec refuses one, and a URL with a password comes from an
    environment variable (``warehouse.url_env``, a ``dg.EnvVar`` here, which the UI shows by name);
    ``password`` likewise (``warehouse.password_env``). A run opens one handle, so every asset of
    the run shares one engine and connection pool, closed when the run ends."""

    url: str
    db_schema: str | None = None
    password: str | None = None
    _warehouse: Warehouse | None = PrivateAttr(default=None)

    def __repr_args__(self):  # pydantic's repr: the URL masked, the password never
        for name, value in super().__repr_args__():
            if name == "password":
                yield name, None if value is None else MASK
            elif name == "url" and isinstance(value, str) and not isinstance(value, dg.EnvVar):
                yield name, display_url(value)
            else:
                yield name, value

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._warehouse = Warehouse(self.url, self.db_schema, password=self.password or None)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None

    def get(self) -> Warehouse:
        """The run's warehouse handle (a fresh one outside a run, e.g. in a test)."""
        return self._warehouse or Warehouse(self.url, self.db_schema, password=self.password or None)


def build_warehouse(spec) -> WarehouseResource:
    """The warehouse resource of a spec: URL and password from the environment variables the spec
    names, resolved when a run starts (``dg.EnvVar``), so their values never enter the UI."""
    url = dg.EnvVar(spec.warehouse_url_env) if spec.warehouse_url_env else spec.warehouse_url
    password = dg.EnvVar(spec.warehouse_password_env) if spec.warehouse_password_env else None
    return WarehouseResource(url=url, db_schema=spec.warehouse_schema, password=password)


class ModelSettings(dg.ConfigurableResource):
    """Training settings shared by every model asset.

    ``time_budget_s``: whole seconds per space/predictor (unset: automatic, 150 s per space on CPU).
    ``threads``: torch threads (default 1: steadier than 2 on a small machine, and it changes result
    bytes). ``lightgbm_margin``: a decimal such as ``0.05`` overriding every target's allowed gap to
    LightGBM (text, so that it can come from an environment variable)."""

    time_budget_s: int | None = None
    seed: int = 0
    threads: int = 1
    predictor_max_rows: int = 50_000
    lightgbm_margin: str | None = None

    def fit_settings(self) -> FitSettings:
        margin = None
        if self.lightgbm_margin not in (None, ""):
            try:
                margin = float(self.lightgbm_margin)
            except ValueError:
                raise dg.Failure(f"lightgbm_margin (FEATRIX_LIGHTGBM_MARGIN) must be a decimal such as 0.05, "
                                 f"not {self.lightgbm_margin!r}.") from None
        return FitSettings(time_budget_s=None if self.time_budget_s is None else float(self.time_budget_s),
                           seed=self.seed, threads=self.threads, predictor_max_rows=self.predictor_max_rows,
                           lightgbm_margin=margin)


def build_model_settings(environ: dict | None = None) -> ModelSettings:
    """``ModelSettings`` whose fields come from ``SETTINGS_ENV`` variables where they are set."""
    environ = os.environ if environ is None else environ
    fields = {}
    for name, var in SETTINGS_ENV.items():
        if environ.get(var):
            fields[name] = dg.EnvVar(var) if name == "lightgbm_margin" else dg.EnvVar.int(var)
    return ModelSettings(**fields)
