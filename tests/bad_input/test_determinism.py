"""Fault: a busy machine. The same data, settings and seed give the same bytes — space
and predictor weights, embeddings, predictions — whether the machine is idle or another
CPU-heavy process runs alongside (nothing that decides a result reads the clock)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featrix_model import EmbeddingSpace, Predictor

BURN = "import itertools\nfor _ in itertools.count():\n    pass\n"


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 240
    group = rng.integers(0, 3, n)
    return pd.DataFrame({"x": group * 1.5 + rng.normal(0, 0.5, n), "y": rng.normal(size=n),
                         "kind": np.array(["a", "b", "c"])[group], "label": np.where(group == 2, "yes", "no")})


def _fit_and_save(folder: Path, budget_s: float | None = None) -> dict[str, str]:
    """Fit and save a space and a predictor: for a fixed number of epochs, or (``budget_s``) for the
    epochs the cost model affords in that budget, with the library's default thread count."""
    df = _frame()
    train, test = df.iloc[:200], df.iloc[200:]
    if budget_s is None:
        space = EmbeddingSpace.fit(train.drop(columns=["label"]), seed=3, epochs=4, progress=False, threads=1)
        predictor = Predictor.fit(space, train, target="label", seed=3, epochs=6, threads=1)
    else:
        space = EmbeddingSpace.fit(train.drop(columns=["label"]), seed=3, time_budget_s=budget_s, progress=False)
        predictor = Predictor.fit(space, train, target="label", seed=3, time_budget_s=budget_s)
    predictor.save(folder / "predictor")
    scored = predictor.predict_frame(test.drop(columns=["label"]), explain=False)
    digests = {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted(folder.rglob("model.safetensors"))}
    digests["embeddings"] = hashlib.sha256(space.encode(test).tobytes()).hexdigest()
    digests["predictions"] = hashlib.sha256(pd.util.hash_pandas_object(scored.astype(str)).to_numpy().tobytes()).hexdigest()
    return digests


@pytest.mark.parametrize("budget_s", [None, 2.0], ids=["fixed_epochs", "time_budget"])
def test_the_same_seed_gives_the_same_bytes_while_another_process_burns_the_cpu(tmp_path, budget_s):
    """Fault: two CPU-burning processes run alongside the second of two identical fits — with fixed
    epochs, and with a 2-second budget whose epochs the cost model chooses (default thread count).
    Outcome: byte-identical space and predictor weights, embeddings and predictions."""
    quiet = _fit_and_save(tmp_path / "quiet", budget_s)
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(2)]
    try:
        busy = _fit_and_save(tmp_path / "busy", budget_s)
    finally:
        for b in burners:
            b.kill()
            b.wait()
    assert len([k for k in quiet if k.endswith("model.safetensors")]) >= 2  # predictor head and its space
    assert busy == quiet


def test_a_strings_vector_does_not_depend_on_what_was_encoded_with_it_or_before_it():
    """Fault: the same string embedded alone, among longer strings (padding), in another order, or
    after the cache already held other strings. Outcome: the same bytes every time, so a model's
    bytes do not depend on what else the process ran before (a selected asset vs the whole job) or
    on which rows reach predict together."""
    from featrix_model import sentence

    texts = ["BOEING 737-800", "EMBRAER", "", "😀 שלום مرحبا", "N14228"]
    sentence.clear_cache()
    company = sentence.embed(["a much longer string that forces padding on every shorter one", *texts,
                              *[f"filler number {i}" for i in range(40)]])[1:1 + len(texts)]
    sentence.clear_cache()
    alone = np.stack([sentence.embed([t])[0] for t in texts])
    sentence.clear_cache()
    reversed_ = sentence.embed(texts[::-1])[::-1]
    assert company.tobytes() == alone.tobytes() == reversed_.tobytes()


def test_a_row_gets_the_same_bytes_alone_or_among_others(tmp_path):
    """Fault: a refresh scores one new row where the first run scored it among thousands. Outcome:
    the row's embedding, probability and OOD distance are byte-identical whether it is encoded or
    predicted alone, with a few others, or in the whole table."""
    df = _frame()
    space = EmbeddingSpace.fit(df.drop(columns=["label"]), seed=3, epochs=2, progress=False, threads=1)
    predictor = Predictor.fit(space, df, target="label", seed=3, epochs=3, threads=1)
    rows = df.drop(columns=["label"])
    whole = space.encode(rows)
    scored = predictor.predict_frame(rows, explain=False)
    for k in (1, 2, 5, 17):
        assert space.encode(rows.iloc[:k]).tobytes() == whole[:k].tobytes(), k
        alone = predictor.predict_frame(rows.iloc[:k], explain=False)
        pd.testing.assert_frame_equal(alone, scored.iloc[:k], check_exact=True)
