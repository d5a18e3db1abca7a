"""The predictor's head (spec §17): the MLP, its depth, how many epochs it trains and its training loop.

    mlp = PredictorMLP(d_in, d_hidden, n_hidden, n_out)
    depth, why = choose_depth(X[tr], y[tr], task, requested, seed)
    epochs, why = plan_epochs(mlp, n_train, n_val, requested, budget_s, space=None)   # fixed cost model
    trainer = HeadTrainer(mlp, criterion, task, space=None)  # or a space to fine-tune with the head
    timeline = trainer.run(X, y, tr, va, epochs, seed); trainer.outputs(X, va)

The epoch count comes from the time budget through a *fixed* cost model, not from a timer, so the
same data + settings + seed always train the same epochs (early stopping still applies).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from featrix_model.progress import epoch_line

HEAD_LR, HEAD_WEIGHT_DECAY, HEAD_DROPOUT, PATIENCE = 1e-3, 1e-4, 0.1, 15
FINE_TUNE_LR = 1e-4  # the space's encoders train at 1/10 of the head's learning rate
MAX_EPOCHS, MAX_EPOCHS_FINE_TUNE = 200, 20
BUDGET_S, BUDGET_FINE_TUNE_S = 60.0, 300.0

# Fixed CPU cost model of one training epoch (1 torch thread), measured once on the project's 2-core
# machine: thread CPU seconds of HeadTrainer.run on synthetic embeddings, 16 shapes from 160 to 64,000
# training rows, d_model 32–256, 2–4 hidden blocks. The constants are a lower envelope (predictions
# 0.71–1.01× measured), so the budget cuts no run that the old wall-clock stop let finish; a busy machine
# runs over the budget instead, and the fit says so.
#   epoch = steps × (HEAD_STEP_S + HEAD_BLOCK_STEP_S × blocks) + (3 × train rows + validation rows) × MACs/row / HEAD_MACS_PER_S
#   (a backward pass costs about two forwards). Fine-tuning adds the space's forward + backward of each batch,
#   FINE_TUNE_STEP_FACTOR × step_seconds(the space's config at the head's batch) / VIEWS (one view, not the
#   space's three), and its forward over the validation rows (a third of that).
HEAD_STEP_S = 0.00068
HEAD_BLOCK_STEP_S = 0.00029
HEAD_MACS_PER_S = 5.4e10
FINE_TUNE_STEP_FACTOR = 1.0
OVER_BUDGET_WARN = 2.0  # a fit whose training loop ran this many times its budget gets a [WARN] decision


class PredictorMLP(nn.Module):
    """Spec §17: Linear(d_model → d_hidden), n residual blocks [Linear + BatchNorm + LeakyReLU + Dropout], head."""

    def __init__(self, d_in: int, d_hidden: int, n_hidden: int, n_out: int, dropout: float = HEAD_DROPOUT):
        super().__init__()
        self.inp = nn.Linear(d_in, d_hidden)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(d_hidden, d_hidden), nn.BatchNorm1d(d_hidden),
                                                  nn.LeakyReLU(0.1), nn.Dropout(dropout)) for _ in range(n_hidden))
        self.head = nn.Linear(d_hidden, n_out)
        self.shape = {"d_in": d_in, "d_hidden": d_hidden, "n_hidden": n_hidden, "n_out": n_out, "dropout": dropout}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for b in self.blocks:
            h = h + b(h)
        return self.head(h)

    @property
    def macs_per_row(self) -> int:
        return sum(m.in_features * m.out_features for m in self.modules() if isinstance(m, nn.Linear))


def hidden_width(d_model: int) -> int:
    return max(64, 2 * d_model)


def batch_size(n_train: int) -> int:
    return int(min(256, max(32, 2 ** round(math.log2(max(32, n_train / 50))))))


def choose_depth(X: np.ndarray, y: np.ndarray, task, requested: int | None, seed: int) -> tuple[int, str]:
    """Spec §17 automatic architecture: linear-enough → 2, RF ≫ linear → 3–4, < 2K rows → at most 2."""
    if requested is not None:
        return requested, "set by the caller"
    from sklearn.model_selection import cross_val_score

    n = min(len(X), 2000)
    idx = np.random.default_rng(seed).permutation(len(X))[:n]
    Xs, ys = X[idx], y[idx]
    models = task.probe_models(ys, seed)
    if isinstance(models, str):
        return 2, models
    s_lin, s_rf = (float(cross_val_score(m, Xs, ys, cv=3).mean()) for m in models)
    gap = s_rf - s_lin
    depth = 4 if gap > 0.10 else 3 if gap > 0.05 else 2
    why = f"random forest {s_rf:.3f} vs linear {s_lin:.3f} on the embeddings (gap {gap:+.3f})"
    if len(X) < 2000 and depth > 2:
        depth, why = 2, why + "; capped at 2 for < 2K rows"
    return depth, why


HEAD_ROWS = 256  # rows of every prediction forward pass (see fixed_shape_outputs); changes bytes if changed


def fixed_shape_outputs(mlp: nn.Module, X: np.ndarray) -> np.ndarray:
    """``mlp`` on rows ``X`` in batches of exactly ``HEAD_ROWS`` rows (the last filled with copies of
    its first row, their outputs dropped): a batch's size changes the float sums, so without this one
    row predicted alone would not give the bytes it gets among others."""
    if not len(X):
        return mlp(torch.from_numpy(X)).numpy()
    out = []
    for start in range(0, len(X), HEAD_ROWS):
        chunk = X[start:start + HEAD_ROWS]
        batch = np.concatenate([chunk, np.repeat(chunk[:1], HEAD_ROWS - len(chunk), axis=0)])
        out.append(mlp(torch.from_numpy(batch)).numpy()[: len(chunk)])
    return np.concatenate(out)


def epoch_seconds(mlp: PredictorMLP, n_train: int, n_val: int, space=None) -> float:
    """Predicted seconds of one training epoch by the fixed cost model above."""
    from featrix_model.training.config import VIEWS, step_seconds

    bs = batch_size(n_train)
    steps = max(1, n_train // bs)
    head = (steps * (HEAD_STEP_S + HEAD_BLOCK_STEP_S * mlp.shape["n_hidden"])
            + (3 * steps * bs + n_val) * mlp.macs_per_row / HEAD_MACS_PER_S)
    if space is None:
        return head
    n_cols, n_rel = len(space.plan.columns), space.net.joint.relationships.n_tokens

    def fwd_bwd(rows: int) -> float:
        return FINE_TUNE_STEP_FACTOR * step_seconds(replace(space.config, batch_size=rows), n_cols, n_rel) / VIEWS

    return head + steps * fwd_bwd(bs) + (fwd_bwd(n_val) / 3 if n_val else 0.0)


def plan_epochs(mlp: PredictorMLP, n_train: int, n_val: int, requested: int | None, budget_s: float | None,
                space=None) -> tuple[int, float, str]:
    """``min(cap, affordable)``: the cap is the caller's ``epochs`` or 200 (frozen) / 20 (fine-tuning);
    affordable = budget / predicted epoch seconds. Returns (epochs, budget seconds, reason)."""
    cap = requested or (MAX_EPOCHS if space is None else MAX_EPOCHS_FINE_TUNE)
    cap_why = "set by the caller" if requested else ("the default cap" + (" when fine-tuning" if space is not None else ""))
    budget = budget_s or (BUDGET_S if space is None else BUDGET_FINE_TUNE_S)
    per_epoch = epoch_seconds(mlp, n_train, n_val, space)
    affordable = max(1, int(budget / per_epoch))
    epochs = min(cap, affordable)
    cost = f"the {budget:.0f}s budget affords {affordable:,} epochs of ~{per_epoch * 1000:.0f} ms by the fixed CPU cost model"
    why = (f"{epochs} ({cap_why}; {cost})" if epochs == cap else f"{epochs} ({cost}; {cap} is {cap_why})")
    why += f"; early stop after {PATIENCE} epochs without improvement"
    return epochs, budget, why


class HeadTrainer:
    """The predictor's training loop: frozen embeddings (default) or fine-tuning the space too."""

    def __init__(self, mlp: PredictorMLP, criterion: nn.Module, task, space=None, rows=None, hide=()):
        self.mlp, self.criterion, self.task, self.space, self.hide = mlp, criterion, task, space, tuple(hide)
        self.notes: list[str] = []
        self.data = space.transform(rows) if space is not None else None
        self.seconds = 0.0

    def _forward(self, X: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        if self.space is None:
            return self.mlp(torch.from_numpy(X[idx]))
        from featrix_model.training.trainer import gather

        emb, _ = self.space.net(gather(self.data, torch.from_numpy(idx)), self.space.visibility(len(idx), self.hide))
        return self.mlp(emb)

    def outputs(self, X: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The head's raw outputs (logits, or mean and log variance) for rows ``idx``, in eval mode."""
        self.mlp.eval()
        if self.space is not None:
            self.space.net.eval()
        with torch.no_grad():
            return self._forward(X, idx).numpy() if len(idx) else np.zeros((0, self.mlp.shape["n_out"]), np.float32)

    def _train_mode(self) -> None:
        self.mlp.train()
        if self.space is not None:
            self.space.net.train()

    def _state(self):
        return (copy.deepcopy(self.mlp.state_dict()),
                copy.deepcopy(self.space.net.state_dict()) if self.space is not None else None)

    def run(self, X: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray, epochs: int, seed: int) -> list[dict]:
        """Train up to ``epochs`` epochs; keep the weights of the best validation (else training) loss."""
        from featrix_model.training.trainer import adamw

        started = time.monotonic()
        g = torch.Generator().manual_seed(seed)
        params = [{"params": self.mlp.parameters(), "lr": HEAD_LR}]
        if self.space is not None:
            params.append({"params": self.space.net.parameters(), "lr": FINE_TUNE_LR})
            self.notes.append("fine-tuning: the space's encoders train too, at 1/10 of the head's learning rate")
        opt = adamw(params, weight_decay=HEAD_WEIGHT_DECAY)
        bs = batch_size(len(tr))
        steps = max(1, len(tr) // bs)
        yt = torch.from_numpy(y)
        best, timeline = (math.inf, None, 0), []
        for epoch in range(1, epochs + 1):
            self._train_mode()
            order = torch.from_numpy(tr)[torch.randperm(len(tr), generator=g)].numpy()
            total = 0.0
            for b in range(steps):
                idx = order[b * bs:(b + 1) * bs]
                if len(idx) < 2:
                    continue
                loss = self.criterion(self._forward(X, idx), yt[idx])
                if not torch.isfinite(loss):
                    self.notes.append(f"epoch {epoch}: skipped a batch with a non-finite loss")
                    continue
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.mlp.parameters(), max(2.0 * float(loss.detach()), 1e-3), foreach=True)
                opt.step()
                total += float(loss.detach())
            entry = {"epoch": epoch, "train_loss": total / steps}
            if len(va):
                out = self.outputs(X, va)
                entry["validation_loss"] = float(self.criterion(torch.from_numpy(out), yt[va]))
                entry.update(self.task.monitor(out, y[va], self.criterion))
            timeline.append(entry)
            monitored = entry.get("validation_loss", entry["train_loss"])
            if monitored < best[0] - 1e-5:
                best = (monitored, self._state(), epoch)
            epoch_line("predictor", epoch, epochs, entry, stopping=epoch - best[2] >= PATIENCE)
            if epoch - best[2] >= PATIENCE:
                self.notes.append(f"early stop at epoch {epoch} (best validation loss at epoch {best[2]})")
                break
        if best[1] is not None:
            self.mlp.load_state_dict(best[1][0])
            if best[1][1] is not None:
                self.space.net.load_state_dict(best[1][1])
        self.mlp.eval()
        self.seconds = time.monotonic() - started
        return timeline
