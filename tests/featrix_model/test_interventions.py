"""The intervention ladder acting on a real fit (spec §11): a learning rate forced 20× below the
automatic one makes training plateau; NO_LEARNING is detected, the 3× LR boost trains the next
epochs at three times the schedule, and validation loss moves again — faster than the same fit
with the ladder switched off, epoch for epoch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from featrix_model import EmbeddingSpace
from featrix_model.training import trainer as trainer_module

LR = 3e-6  # the automatic rate for < 1K rows is 5e-5


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a = rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": a * 2 + rng.normal(size=n) * 0.1, "c": rng.normal(size=n)})


def _fit() -> list[dict]:
    return EmbeddingSpace.fit(_frame(), epochs=40, lr=LR, progress=False, seed=0, threads=1).timeline


def test_a_plateau_is_detected_boosted_and_recovers(monkeypatch):
    boosted = _fit()
    [detected] = [h["epoch"] for h in boosted if "LR_BOOST_3X" in h["corrective_actions"]]
    assert "NO_LEARNING" in boosted[detected - 1]["failures_detected"]
    window = range(detected + 1, min(detected + 11, 40))  # the boost's epochs inside the fit
    real = trainer_module.detect_failures
    monkeypatch.setattr(trainer_module, "detect_failures",
                        lambda history: [f for f in real(history) if f != "NO_LEARNING"])
    plain = _fit()  # the same fit, the ladder never triggered
    for e in window:
        assert boosted[e - 1]["learning_rate"] == pytest_approx(3 * plain[e - 1]["learning_rate"])
        assert "LR_BOOST_ACTIVE" in boosted[e - 1]["corrective_actions"]
    assert not any("NO_LEARNING" in boosted[e - 1]["failures_detected"] for e in window), "learning resumed"
    first, last = window[0] - 1, window[-1]
    gained = boosted[first - 1]["validation_loss"] - boosted[last - 1]["validation_loss"]
    gained_plain = plain[first - 1]["validation_loss"] - plain[last - 1]["validation_loss"]
    assert gained > 1.5 * gained_plain > 0, (gained, gained_plain)


def pytest_approx(x):
    import pytest

    return pytest.approx(x, rel=1e-9)
