"""The saved space is the validated one: strategy pruning and the set encoder's semantic floor
change the encoders before an epoch's validation pass, so the best epoch's state — the one kept
and saved — encodes its validation rows exactly as that validation pass saw them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from featrix_model import EmbeddingSpace
from featrix_model.training import trainer as trainer_module


def _frame(n: int = 320) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue", "amber"], n)
    return pd.DataFrame({
        "colour": colour,
        "size": rng.choice(["S", "M", "L"], n),
        "note": [f"{c} parcel {i} sent {'today' if i % 3 else 'yesterday'} to depot {i % 11}" for i, c in enumerate(colour)],
        "x": rng.normal(size=n) + (colour == "red") * 2.0,
        "y": rng.normal(size=n),
    })


def test_the_saved_state_is_the_state_that_was_validated(monkeypatch):
    seen = []
    real = trainer_module.Trainer._validate

    def recording(self, val_idx, temperature):
        loss, emb = real(self, val_idx, temperature)
        floors = [float(e.semantic_floor) for e in self.net.encoders if hasattr(e, "semantic_floor")]
        seen.append((self, val_idx.clone(), temperature, emb.clone(), floors))
        return loss, emb

    monkeypatch.setattr(trainer_module.Trainer, "_validate", recording)
    es = EmbeddingSpace.fit(_frame(), epochs=1, progress=False, seed=0)  # one epoch: the floor goes 0.7 → 0.1 at once
    assert es.timeline_["metadata"]["best_epoch"] == 1 and len(seen) == 1
    trainer, val_idx, temperature, validated, floors = seen[0]
    _, served = real(trainer, val_idx, temperature)  # the final (saved) state on the same rows and masks
    assert torch.equal(served, validated), "the saved state encodes its validation rows differently"
    assert floors and all(abs(f - 0.1) < 1e-6 for f in floors), floors  # validated at the floor it serves with
