"""EmbeddingSpace end to end: planted structure, semantics, determinism, save/load, dirty data."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from featrix_model import EmbeddingSpace

torch.set_num_threads(1)
BUDGET = 12  # seconds of training per fit: enough for the structure below, short for CI


def planted(n: int = 1500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows from 3 latent groups, expressed through correlated scalar, categorical and text columns,
    plus noise columns and a random identifier."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, n)
    words = np.array(["budget plastic toy for kids", "premium leather office chair", "industrial steel drill press"])
    df = pd.DataFrame({
        "price": np.exp(np.array([2.0, 4.0, 6.0])[g] + rng.normal(0, 0.3, n)),
        "weight": np.array([0.5, 8.0, 40.0])[g] * rng.lognormal(0, 0.2, n),
        "segment": np.array(["consumer", "office", "industrial"])[g],
        "description": words[g] + " " + rng.choice(["red", "blue", "black", "grey"], n),
        "noise_a": rng.normal(size=n),
        "noise_b": rng.choice(["p", "q", "r", "s", "t"], n),
        "order_id": [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**62, n)],
    })
    return df, g


@pytest.fixture(scope="module")
def fitted():
    df, g = planted()
    return df, g, EmbeddingSpace.fit(df, time_budget_s=BUDGET, seed=0, progress=False)


def test_probe_recovers_planted_groups(fitted):
    df, g, es = fitted
    emb = es.encode(df)
    assert emb.shape == (len(df), es.d_model)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    acc = cross_val_score(LogisticRegression(max_iter=2000), emb, g, cv=3).mean()
    assert acc > 0.9, f"probe accuracy {acc:.3f} (chance 0.33)"
    short = es.encode_short(df)
    assert short.shape == (len(df), 3) and np.allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-4)


def test_mutual_information_ranks_planted_pairs_above_noise(fitted):
    _, _, es = fitted
    mi = es.mutual_information()
    planted_pairs = [("price", "segment"), ("segment", "weight"), ("description", "segment"), ("weight", "price")]
    noise_pairs = [("noise_a", "segment"), ("noise_b", "price"), ("price", "noise_b"), ("segment", "noise_a")]
    assert min(mi.loc[i, j] for i, j in planted_pairs) > max(mi.loc[i, j] for i, j in noise_pairs)


def test_identifier_excluded_with_reason_and_report(fitted):
    _, _, es = fitted
    report = es.column_report().set_index("column")
    assert report.loc["order_id", "excluded"]
    assert "unique" in report.loc["order_id", "reason"]
    assert report.loc["price", "type"] == "scalar" and report.loc["segment", "type"] == "set"
    assert not report.loc["price", "excluded"]
    assert isinstance(report.loc["price", "encoder"], dict) and report.loc["price", "encoder"]
    assert "order_id" not in es.mutual_information().columns
    assert any("batch_size" in d for d in es.decisions)  # every automatic choice is logged with a reason


def test_similar_returns_rows_of_the_same_group(fitted):
    df, g, es = fitted
    hits = es.similar(df.iloc[[0]], k=10)
    assert list(hits["row"])[0] == 0 and hits["score"].is_monotonic_decreasing
    assert (g[hits["row"].to_numpy()] == g[0]).mean() >= 0.9
    assert "segment" in hits.columns


def test_timeline_follows_spec_structure(fitted):
    _, _, es = fitted
    tl = es.timeline
    assert len(tl) >= 2
    for key in ("learning_rate", "train_loss", "validation_loss", "dropout_rate", "spread_loss",
                "spread_temperature", "gradients", "failures_detected", "corrective_actions", "collapse"):
        assert key in tl[-1]
    assert tl[0]["dropout_rate"] == 0.5
    assert not tl[-1]["collapse"]["collapsed"]
    assert tl[-1]["validation_loss"] < tl[0]["validation_loss"]


def test_save_load_gives_identical_bytes(fitted, tmp_path):
    df, _, es = fitted
    es.save(tmp_path / "es")
    names = {p.name for p in (tmp_path / "es").iterdir()}
    assert {"config.json", "model.safetensors", "codecs.json", "timeline.json",
            "training_timeline.png", "mutual_information.png", "sphere.html"} <= names
    assert not any(n.endswith((".pkl", ".pt", ".pickle")) for n in names)
    loaded = EmbeddingSpace.load(tmp_path / "es")
    assert es.encode(df.head(200)).tobytes() == loaded.encode(df.head(200)).tobytes()
    pd.testing.assert_frame_equal(es.mutual_information(), loaded.mutual_information())


def test_same_seed_same_embeddings():
    df, _ = planted(400, seed=1)
    a = EmbeddingSpace.fit(df, seed=3, progress=False, epochs=2)
    b = EmbeddingSpace.fit(df, seed=3, progress=False, epochs=2)
    assert a.encode(df).tobytes() == b.encode(df).tobytes()


def test_unseen_spellings_land_near_the_known_category():
    rng = np.random.default_rng(0)
    n = 900
    status = rng.choice(["cancelled", "shipped", "delivered"], n)
    amount = np.where(status == "cancelled", 0.0, rng.gamma(2.0, 50.0, n))
    df = pd.DataFrame({"status": status, "amount": amount, "items": rng.integers(1, 5, n).astype(float)})
    es = EmbeddingSpace.fit(df, time_budget_s=BUDGET, seed=0, progress=False)
    probe = pd.DataFrame({"status": ["cancelled", "canceled", "CANCELLED", "shipped"], "amount": [None] * 4,
                          "items": [2.0] * 4})
    e = es.encode(probe)  # "canceled" and "CANCELLED" were never seen: semantic path only
    sim = e @ e.T
    assert sim[1, 0] > sim[1, 3] and sim[2, 0] > sim[2, 3] and sim[1, 2] > sim[1, 3]


def test_missing_values_everywhere_still_train():
    df, g = planted(600, seed=2)
    df = df.drop(columns=["order_id"])
    rng = np.random.default_rng(5)
    df = df.mask(rng.random(df.shape) < 0.3)
    es = EmbeddingSpace.fit(df, seed=0, progress=False, epochs=3)
    emb = es.encode(df)
    assert np.isfinite(emb).all()
    assert all(np.isfinite(e["train_loss"]) for e in es.timeline)


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="non-empty pandas DataFrame"):
        EmbeddingSpace.fit(pd.DataFrame())
    with pytest.raises(ValueError, match="at least 2"):
        EmbeddingSpace.fit(pd.DataFrame({"x": [1.0, 2.0, 3.0] * 10, "c": ["same"] * 30}), progress=False, epochs=1)
    with pytest.raises(KeyError, match="not in the data"):
        EmbeddingSpace.fit(planted(100)[0], exclude=("nope",), progress=False, epochs=1)
