"""The training settings of one pipeline run, as one typed value handed to every model step.

``assets`` builds it from the Dagster ``ModelSettings`` resource (whose fields can come from
environment variables); the pipeline's functions take it instead of loose keyword arguments, so a
setting added here reaches every space and predictor that should see it.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LIGHTGBM_MARGIN = 0.02


@dataclass(frozen=True)
class FitSettings:
    """``time_budget_s``: seconds of training for each space and predictor (None: automatic; spaces
    turn it into a fixed epoch count by a cost model, so it never makes a result depend on the
    clock). ``threads``: torch's thread count (it changes result bytes, so it is recorded).
    ``lightgbm_margin``: how far (relative) a predictor may trail LightGBM on the same held-out rows;
    None: each target's own margin, else the default 2 %."""

    time_budget_s: float | None = None
    seed: int = 0
    threads: int = 1
    predictor_max_rows: int = 50_000
    lightgbm_margin: float | None = None

    def training(self) -> dict:
        """The settings that decide a trained artifact's bytes (what its key hashes)."""
        return {"time_budget_s": self.time_budget_s, "seed": self.seed, "threads": self.threads}

    def margin_for(self, target_margin: float | None) -> float:
        """The margin a target's ``beats_baselines`` check allows: the run's, the target's, or the default."""
        return next(m for m in (self.lightgbm_margin, target_margin, DEFAULT_LIGHTGBM_MARGIN) if m is not None)
