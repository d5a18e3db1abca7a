"""The train/validation split check (spec §13): per-column KL between the two sets of rows, with
the spec's warning levels, in the timeline's metadata and the fit's decisions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from featrix_model import EmbeddingSpace
from featrix_model.training.split import split_divergence, split_warnings


def test_a_fair_split_reads_near_zero_and_a_biased_one_is_named():
    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame({"x": rng.normal(size=n), "kind": rng.choice(list("abc"), n)})
    order = rng.permutation(n)
    fair = split_divergence(df, ["x", "kind"], order[200:], order[:200])
    assert max(fair.values()) < 0.1 and split_warnings(fair) == []
    by_x = np.argsort(df["x"].to_numpy())  # validation = the 200 largest x: what a sorted table split in order gives
    biased = split_divergence(df, ["x", "kind"], by_x[:-200], by_x[-200:])
    assert biased["x"] > 2.0 and biased["kind"] < 0.1
    assert split_warnings(biased, n_validation=50) == []  # too few validation rows to read levels
    [line] = split_warnings(biased, n_validation=200)
    assert line.startswith("[WARN]") and "'x'" in line and "leakage" in line


def test_the_fit_records_the_split_check():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=300), "b": rng.choice(list("xyz"), 300), "c": rng.normal(size=300)})
    es = EmbeddingSpace.fit(df, epochs=1, progress=False, seed=0, threads=1)
    kl = es.timeline_["metadata"]["split_kl"]
    assert set(kl) == {"a", "b", "c"} and all(v >= 0 for v in kl.values())
