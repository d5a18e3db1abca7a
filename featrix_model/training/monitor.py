"""Training health (spec §11): failure detection, collapse detection and the intervention ladder.

Detection reads the per-epoch history of *fixed-weight* train/validation losses (the curriculum
changes the objective's weights, so the monitored losses use constant weights to stay comparable).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


def collapse_metrics(emb: torch.Tensor) -> dict:
    """Spec §11 table: std > 0.01, range > 0.1 and mean pairwise distance > 0.1 are healthy."""
    e = emb.detach().float()
    std = float(e.std(dim=0).mean()) if len(e) > 1 else 0.0
    rng = float((e.max(dim=0).values - e.min(dim=0).values).mean()) if len(e) else 0.0
    sample = e[:512]
    dist = float(torch.pdist(sample).mean()) if len(sample) > 1 else 0.0
    collapsed = std < 0.01 or rng < 0.1 or dist < 0.1
    return {"embedding_std": std, "embedding_range": rng, "avg_pairwise_distance": dist, "collapsed": collapsed}


def _rel_improvement(values: list[float], window: int) -> float | None:
    if len(values) <= window:
        return None
    old, new = values[-window - 1], values[-1]
    return (old - new) / max(abs(old), 1e-12)


def detect_failures(history: list[dict]) -> list[str]:
    """Failure modes of spec §11 for the last epoch of ``history`` (dicts with epoch, train_loss,
    validation_loss, gradients.unclipped_norm)."""
    if not history:
        return []
    last = history[-1]
    epoch = last["epoch"]
    train = [h["train_loss"] for h in history]
    val = [h["validation_loss"] for h in history if h.get("validation_loss") is not None]
    grad = last.get("gradients", {}).get("unclipped_norm", 1.0)
    out = []
    if grad < 1e-8:
        out.append("DEAD_NETWORK")
    imp_train = _rel_improvement(train, 5)
    if imp_train is not None and imp_train < 0.01 and grad < 0.01:
        out.append("VERY_SLOW_LEARNING")
    imp_val = _rel_improvement(val, 5)
    if epoch > 15 and imp_val is not None and imp_val < 0.001:
        out.append("NO_LEARNING")
    if epoch > 10 and len(val) > 5 and len(train) > 5:
        val_up = (val[-1] - val[-6]) / max(abs(val[-6]), 1e-12)
        train_down = (train[-6] - train[-1]) / max(abs(train[-6]), 1e-12)
        if val_up > 0.05 and train_down > 0.02:
            out.append("SEVERE_OVERFITTING")
    if len(val) > 1 and val[-1] > 0 and (val[-1] - train[-1]) / abs(val[-1]) > 0.10 and val[-1] > val[-2]:
        out.append("MODERATE_OVERFITTING")
    if len(train) >= 5:
        recent = np.array(train[-5:])
        if recent.mean() != 0 and recent.std() / abs(recent.mean()) > 0.10:
            out.append("UNSTABLE_TRAINING")
    return out


@dataclass
class InterventionLadder:
    """Spec §11 escalation: 3× LR boost (20 epochs) → 2× temperature → 2× LR → 2× temperature → accept.

    Each stage waits 10 epochs for the previous one to work. NO_LEARNING also blocks early
    stopping for 10 epochs. The 3× boost trains exactly the 20 epochs after its detection and ends
    then whatever stage came since; the later 2× LR stage doubles the schedule for good.
    ``lr_multiplier`` = the boost in force × that doubling.
    """

    stage: int = 0
    lr_multiplier: float = 1.0
    temperature_multiplier: float = 1.0
    boost_until: int = -1  # the last epoch the 3× boost trains
    lr_scale: float = 1.0  # the 2× LR stage's lasting doubling
    last_stage_epoch: int = -10**9
    block_early_stop_until: int = -1
    actions: list[dict] = field(default_factory=list)

    def step(self, epoch: int, failures: list[str]) -> list[str]:
        """Called at the end of ``epoch``; the multipliers it leaves apply from the next epoch."""
        notes = []
        boosted = self.boost_until >= 0 and epoch < self.boost_until
        if self.boost_until >= 0 and epoch >= self.boost_until:
            self.boost_until = -1
            self.lr_multiplier = self.lr_scale
            notes.append("LR_BOOST_END")
        if "NO_LEARNING" not in failures:
            if boosted:
                notes.append("LR_BOOST_ACTIVE")
            return notes
        self.block_early_stop_until = max(self.block_early_stop_until, epoch + 10)
        if self.stage > 0 and epoch - self.last_stage_epoch < 10:
            if boosted:
                notes.append("LR_BOOST_ACTIVE")
            return notes
        self.stage += 1
        self.last_stage_epoch = epoch
        if self.stage == 1:
            self.boost_until = epoch + 20
            self.lr_multiplier = 3.0 * self.lr_scale
            self._record(epoch, "LR_BOOST", {"lr_multiplier": 3.0, "boost_epochs": 20})
            notes.append("LR_BOOST_3X")
        elif self.stage in (2, 4):
            self.temperature_multiplier *= 2.0
            self._record(epoch, "TEMP_BOOST", {"temperature_multiplier": self.temperature_multiplier})
            notes.append("TEMP_BOOST_2X")
        elif self.stage == 3:
            self.lr_scale *= 2.0
            self.lr_multiplier = self.lr_scale * (3.0 if self.boost_until >= 0 else 1.0)
            self._record(epoch, "LR_BOOST", {"lr_multiplier": self.lr_multiplier, "cumulative": True})
            notes.append("LR_BOOST_2X")
        else:
            self._record(epoch, "ACCEPT", {"note": "still no learning after the full ladder; keeping the best state"})
            notes.append("ACCEPT_CURRENT_STATE")
        return notes

    def early_stop_blocked(self, epoch: int) -> bool:
        return epoch <= self.block_early_stop_until

    def _record(self, epoch: int, action: str, details: dict) -> None:
        self.actions.append({"epoch": epoch, "action_type": action, "trigger": "NO_LEARNING", "details": details})
