"""The training loop (spec §8–§13): masks, curriculum losses, schedules, monitoring, timeline."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from featrix_model import io
from featrix_model.codecs.base import take_rows
from featrix_model.network import Batch, EmbeddingNetwork
from featrix_model.progress import epoch_line
from featrix_model.training import checkpoint, parallel
from featrix_model.training import losses as L
from featrix_model.training.config import TrainingConfig, curriculum_weights, dropout_at
from featrix_model.training.sampler import epoch_batches
from featrix_model.training.monitor import InterventionLadder, collapse_metrics, detect_failures
from featrix_model.training.relations import ABLATION_ROWS, MIN_EPOCHS, RelationshipPruner

FIXED_WEIGHTS = {"spread": 1.0, "joint": 1.0, "marginal": 1.0 / 8}  # monitored loss: constant weights
CUBLAS_DETERMINISTIC = (":4096:8", ":16:8")  # the workspace configs under which cuBLAS is deterministic
# cuBLAS reads its workspace config once, when the process first uses it: set it before any fit can
# (a value the user set is kept; on a CPU-only machine nothing reads it)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC[0])


def cuda_determinism(device: torch.device | str, deterministic: bool = True, allow_tf32: bool = False) -> None:
    """Set torch's global CUDA numerics for a fit or encode on ``device`` (nothing at all on a CPU).

    ``deterministic``: deterministic algorithms (``torch.use_deterministic_algorithms``; an op without
    a deterministic CUDA kernel warns instead of failing, and ``bench/gpu_check.py`` reports whether
    two fits gave the same bytes), cuDNN deterministic with autotuning off, and cuBLAS's
    deterministic workspace (``CUBLAS_WORKSPACE_CONFIG``, read when the process first uses cuBLAS,
    so it is also set at import of this module, unless the user set one). ``allow_tf32``: TF32
    matmuls and convolutions (off: full FP32)."""
    if torch.device(device).type != "cuda":
        return
    if deterministic and os.environ.get("CUBLAS_WORKSPACE_CONFIG") not in CUBLAS_DETERMINISTIC:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_DETERMINISTIC[0]
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32


def gather(data: Batch, idx: torch.Tensor, device: torch.device | str | None = None) -> Batch:
    """Rows ``idx`` of every column's tensors (kept on the CPU; per-distinct tables looked up per row,
    ``codecs.base.take_rows``), moved to ``device`` for the step."""
    rows = {c: take_rows(t, idx) for c, t in data.items()}
    return rows if device is None else {c: {k: v.to(device) for k, v in t.items()} for c, t in rows.items()}


def lr_factor(step: int, total: int) -> float:
    """Spec §10 OneCycle: warm up from 1/25 of max over 15 %, hold the peak 5 %, cosine to 1/10,000."""
    p = step / max(1, total)
    if p < 0.15:
        return 1 / 25 + (1 - 1 / 25) * p / 0.15
    if p < 0.20:
        return 1.0
    q = (p - 0.20) / 0.80
    return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * min(1.0, q)))


def effective_temperature(base: float, multiplier: float) -> float:
    """The contrastive temperature an epoch trains with: the configured (adaptive) temperature, clamped
    to [0.01, 0.2], times the intervention ladder's boost — a boost raises the ceiling with it, so a
    2× boost of a 0.2 base trains at 0.4 instead of being clamped back to where it was."""
    return float(min(0.2, max(0.01, base)) * multiplier)


def clip_gradients(parameters, loss: float, clip_ratio: float) -> tuple[float, float]:
    """Spec §10 adaptive clipping: clip the total gradient norm at ``loss × clip_ratio`` (at least 1e-6).
    Returns (the unclipped norm, the threshold)."""
    threshold = max(loss * clip_ratio, 1e-6)
    return float(torch.nn.utils.clip_grad_norm_(parameters, threshold, foreach=True)), threshold


def adamw(params, **kwargs) -> torch.optim.AdamW:
    """AdamW with torch's multi-tensor (``foreach``) step, which torch enables by default on CUDA only.
    On a CPU it gives the per-tensor loop's bytes exactly (same element-wise arithmetic, checked on a
    whole fit) at about 70 % of its cost: the per-parameter Python loop of the default was 15 % of a
    training step here (profiled). The fused kernel is faster still but changes the result bytes."""
    return torch.optim.AdamW(params, foreach=True, **kwargs)


def gradient_warning(unclipped: float, loss: float) -> bool:
    """Spec §10: warn when the gradient norm exceeds 10× the loss."""
    return unclipped > 10 * loss


class Trainer:
    """Trains an ``EmbeddingNetwork`` on pre-encoded column tensors; returns the timeline dict."""

    def __init__(self, net: EmbeddingNetwork, cfg: TrainingConfig, data: Batch, n_rows: int,
                 log: Callable[[str], None] = print, timeline_path: Path | None = None,
                 checkpoint_dir: Path | None = None):
        self.net, self.cfg, self.data, self.n_rows, self.log = net, cfg, data, n_rows, log
        self.timeline_path = timeline_path
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.scalar_names = [net.columns[i] for i in net.scalar_index.tolist()]
        self.column_losses = np.full(len(net.columns), np.nan)
        self.pruner: RelationshipPruner | None = None

    # ------------------------------------------------------------------ losses

    def _losses(self, batch: Batch, gen: torch.Generator, temperature: float) -> dict[str, torch.Tensor]:
        net = self.net
        cols_full, cols_short = net.encode_columns(batch)
        present = net.present(batch)
        vis1, vis2 = (v.to(present.device) for v in L.complementary_views(present.cpu(), gen))
        B, C = present.shape
        everything = torch.ones_like(vis1)
        emb, _ = net.joint(cols_full.repeat(3, 1, 1), torch.cat([everything, vis1, vis2]))
        e0, e1, e2 = emb.chunk(3)
        out = {"joint": L.joint_loss([e1, e2], e0, temperature), "spread": L.spread_loss(e0, temperature)}
        per_col = self._column_losses((e1, e2), (vis1, vis2), cols_full, cols_short, present, temperature)
        out["per_column"] = per_col.detach()
        out["marginal"] = torch.nan_to_num(per_col, nan=0.0).sum()
        if self.scalar_names:
            target = torch.stack([batch[c]["recon_target"] for c in self.scalar_names], dim=1)
            ok = torch.stack([~batch[c]["missing"] for c in self.scalar_names], dim=1)
            out["reconstruction"] = L.reconstruction_loss(net.reconstruct(e0), target, ok)
        else:
            out["reconstruction"] = e0.new_zeros(())
        out["embeddings"] = e0.detach()
        return out

    def _column_losses(self, embs, views, cols_full, cols_short, present, temperature: float) -> torch.Tensor:
        """(C,) marginal loss per column, averaged over the masked views: each view's row embedding
        predicts the columns it hid."""
        per_view = []
        for e, vis in zip(embs, views):
            pf, ps = self.net.predict_columns(e)
            per_view.append(L.marginal_losses(pf, ps, cols_full, cols_short, ~vis & present, temperature))
        return torch.stack(per_view).nanmean(dim=0)

    def _fixed(self, parts: dict) -> float:
        p = {k: float(parts[k].detach()) for k in ("spread", "joint", "marginal", "reconstruction")}
        return (FIXED_WEIGHTS["spread"] * p["spread"] + FIXED_WEIGHTS["joint"] * p["joint"]
                + FIXED_WEIGHTS["marginal"] * p["marginal"] + self.cfg.reconstruction_weight * p["reconstruction"])

    # ------------------------------------------------------------------ loop

    def fit(self, progress: bool = False, movie_rows: torch.Tensor | None = None) -> dict:
        cfg, net = self.cfg, self.net
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        size, rank = parallel.world()  # data-parallel in a process group (training.parallel)
        if size > 1 and self.checkpoint_dir is not None:
            raise ValueError(parallel.NO_CHECKPOINTS)
        if size > 1 and min(cfg.batch_size, self.n_rows) < 2 * size:  # every rank raises, none waits alone
            raise ValueError(f"data-parallel training over {size} processes needs batches of at least {2 * size} "
                             f"rows (2 per process); this fit's batch is {min(cfg.batch_size, self.n_rows)}: "
                             "train in fewer processes or on more rows")
        views = gen if size == 1 else torch.Generator().manual_seed(cfg.seed + 1 + rank)  # each rank's view masks
        step_losses = parallel.objective(net, self._losses)
        split_gen = torch.Generator().manual_seed(cfg.seed + 42)  # spec §13: seed 42 for the initial split
        perm = torch.randperm(self.n_rows, generator=split_gen)
        n_val = max(1, int(round(self.n_rows * cfg.val_fraction))) if self.n_rows >= 20 else 0
        val_idx, train_idx = perm[:n_val], perm[n_val:]
        truncated = 0
        if cfg.max_train_rows and len(train_idx) > cfg.max_train_rows and not cfg.every_row_each_epoch:
            truncated = len(train_idx) - cfg.max_train_rows
            train_idx = train_idx[: cfg.max_train_rows]
        self.initial_split = (train_idx.clone(), val_idx.clone())  # what split.split_divergence measures
        bs = min(cfg.batch_size, len(train_idx))
        per_epoch = cfg.rows_per_epoch if cfg.rows_per_epoch and not cfg.every_row_each_epoch else None
        steps_per_epoch = len(epoch_batches(train_idx[:per_epoch], bs, cfg.every_row_each_epoch))
        total = cfg.epochs * steps_per_epoch
        opt = adamw(net.parameters(), lr=cfg.lr * cfg.max_lr_multiplier, weight_decay=cfg.weight_decay)
        ladder = InterventionLadder()
        rel = net.joint.relationships
        trainable = any(p.requires_grad for p in rel.parameters())  # extend's first phase freezes the extractor
        fresh = bool(rel.active.all())  # a pool that starts whole (extend's phase 2 starts from a pruned one)
        if rel.n_pairs > cfg.max_pairs and cfg.epochs >= MIN_EPOCHS and trainable and fresh:  # prune the pool
            self.pruner = RelationshipPruner([(int(a), int(b)) for a, b in zip(rel.left, rel.right)], len(net.columns),
                                             cfg.epochs, cfg.max_pairs, cfg.seed, rel.tokens_per_pair)
        history, frames = [], []
        best = (math.inf, None, 0)
        step, start, over_budget = 0, time.monotonic(), False
        bar, first_epoch, fingerprint = None, 1, None
        if self.checkpoint_dir is not None:
            fields = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("reasons", "time_budget_s")}
            fingerprint = checkpoint.fingerprint(fields, net, self.data, {"movie": movie_rows is not None})
            found = checkpoint.latest(self.checkpoint_dir, fingerprint, self.log)
            if found is None:
                checkpoint.clear(self.checkpoint_dir)
            else:
                tensors, saved = found
                net.load_state_dict(checkpoint.prefixed(tensors, "net."))
                checkpoint.load_optimizer(opt, tensors, saved["optimizer"])
                gen.set_state(tensors["rng.gen"])
                torch.set_rng_state(tensors["rng.torch"])
                if "rng.cuda" in tensors and net.device.type == "cuda":  # dropout masks on a GPU draw from it
                    torch.cuda.set_rng_state(tensors["rng.cuda"], net.device)
                train_idx, val_idx = tensors["idx.train"], tensors["idx.val"]
                ladder = InterventionLadder(**saved["ladder"])
                history, frames, step, lr = saved["history"], [np.asarray(f) for f in saved["frames"]], saved["step"], saved["lr"]
                best_state = checkpoint.prefixed(tensors, "best.")
                best = (saved["best_monitored"], best_state or None, saved["best_epoch"])
                self.column_losses = np.asarray(saved["column_losses"], dtype=float)
                if self.pruner is not None:
                    self.pruner.restore(saved["pruner"])
                first_epoch = saved["epoch"] + 1
                self.log(f"resumed after epoch {saved['epoch']} of {cfg.epochs} from checkpoint {self.checkpoint_dir}")
        if progress and rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.epochs, desc="embedding space", unit="epoch")
        for epoch in range(first_epoch, cfg.epochs + 1):
            p_epoch = (epoch - 1) / cfg.epochs
            dropout = dropout_at(p_epoch, cfg.dropout_start, cfg.dropout_end)
            net.set_dropout(dropout)
            weights = curriculum_weights(p_epoch)
            temperature = effective_temperature(cfg.temperature, ladder.temperature_multiplier)
            net.train()
            order = train_idx[torch.randperm(len(train_idx), generator=gen)][:per_epoch]  # a fresh sample per epoch
            sums = {"loss": 0.0, "fixed": 0.0, "spread": 0.0, "joint": 0.0, "marginal": 0.0, "reconstruction": 0.0}
            grads = {"unclipped": 0.0, "clipped": 0.0}
            col_sum, col_n = np.zeros(len(net.columns)), np.zeros(len(net.columns))
            notes: list[str] = []
            for idx in epoch_batches(order, bs, cfg.every_row_each_epoch):
                parts = step_losses(gather(self.data, parallel.shard(idx), net.device), views, temperature)
                loss = (weights["spread"] * parts["spread"] + weights["joint"] * parts["joint"]
                        + weights["marginal"] * parts["marginal"] + cfg.reconstruction_weight * parts["reconstruction"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                loss_value = parallel.mean(float(loss.detach()))  # every rank clips at the same threshold
                unclipped, threshold = clip_gradients(net.parameters(), loss_value, cfg.clip_ratio)
                if gradient_warning(unclipped, loss_value) and "GRADIENT_WARNING" not in notes:
                    notes.append("GRADIENT_WARNING")
                lr = cfg.lr * cfg.max_lr_multiplier * lr_factor(step, total) * ladder.lr_multiplier
                for g in opt.param_groups:
                    g["lr"] = lr
                opt.step()
                step += 1
                sums["loss"] += float(loss.detach())
                sums["fixed"] += self._fixed(parts)
                for k in ("spread", "joint", "marginal", "reconstruction"):
                    sums[k] += float(parts[k].detach())
                grads["unclipped"] += unclipped
                grads["clipped"] += min(unclipped, threshold)
                pc = parts["per_column"].cpu().numpy()
                ok = ~np.isnan(pc)
                col_sum[ok] += pc[ok]
                col_n[ok] += 1
            n = steps_per_epoch
            parallel.sync_buffers(net)
            if size > 1:  # the epoch's losses over the whole batches: what the ladder and the timeline read
                keys = list(sums)
                totals, col_sum, col_n = parallel.sums(np.array([sums[k] for k in keys]), col_sum, col_n)
                sums = {k: float(v) / size for k, v in zip(keys, totals)}
            self.column_losses = np.where(col_n > 0, col_sum / np.maximum(col_n, 1), np.nan)
            # strategy pruning and the semantic floor change the encoders *before* the validation pass,
            # so the state kept as the best one (and saved) is exactly the state that was validated
            notes += [n for enc in net.encoders for n in enc.on_epoch_end(epoch, epoch / cfg.epochs)]
            swaps = self._prune(epoch, val_idx if len(val_idx) else train_idx, temperature)
            val_loss, val_emb = self._validate(val_idx, temperature) if len(val_idx) else (None, None)
            entry = {
                "epoch": epoch, "learning_rate": lr, "train_loss": sums["fixed"] / n, "objective": sums["loss"] / n,
                "validation_loss": val_loss, "dropout_rate": dropout, "spread_loss": sums["spread"] / n,
                "spread_temperature": temperature, "joint_loss": sums["joint"] / n, "marginal_loss": sums["marginal"] / n,
                "reconstruction_loss": sums["reconstruction"] / n, "loss_weights": weights,
                "gradients": {"unclipped_norm": grads["unclipped"] / n, "clipped_norm": grads["clipped"] / n,
                              "clip_ratio": grads["clipped"] / max(grads["unclipped"], 1e-12)},
                "val_set_resampled": False, "elapsed_s": round(time.monotonic() - start, 2),
            }
            if swaps is not None:
                entry["relationships"] = swaps
            if val_emb is not None:
                entry["collapse"] = collapse_metrics(val_emb.cpu())
            history.append(entry)
            entry["failures_detected"] = detect_failures(history)
            if entry.get("collapse", {}).get("collapsed"):
                entry["failures_detected"].append("EMBEDDING_COLLAPSE")
            entry["corrective_actions"] = ladder.step(epoch, entry["failures_detected"]) + notes
            entry["early_stop_blocked"] = ladder.early_stop_blocked(epoch)
            monitored = val_loss if val_loss is not None else entry["train_loss"]
            if monitored < best[0] - cfg.min_delta:
                best = (monitored, copy.deepcopy(net.state_dict()), epoch)
            if movie_rows is not None:
                frames.append(self._short(movie_rows))
            if self.timeline_path is not None and rank == 0:  # spec §12: the timeline is on disk while training runs
                io.write_text_atomically(self.timeline_path, json.dumps(
                    {"metadata": {"total_epochs": cfg.epochs}, "timeline": history, "corrective_actions": ladder.actions},
                    default=float))
            if bar is not None:
                bar.set_postfix(loss=f"{entry['train_loss']:.3f}", val=f"{val_loss:.3f}" if val_loss else "-")
                bar.update(1)
            if cfg.rotation_every and epoch % cfg.rotation_every == 0 and len(val_idx) and epoch < cfg.epochs:
                train_idx, val_idx = self._rotate(train_idx, val_idx, epoch)
                entry["val_set_resampled"] = True
            stopping = epoch - best[2] >= cfg.patience and not entry["early_stop_blocked"]
            epoch_line("embedding space", epoch, cfg.epochs, entry, stopping)
            if stopping:
                entry["corrective_actions"].append("EARLY_STOP")
                self.log(f"early stop at epoch {epoch}: no validation improvement > {cfg.min_delta} for {cfg.patience} epochs")
                break
            if cfg.time_budget_s and not over_budget and time.monotonic() - start > 3 * cfg.time_budget_s:
                over_budget = True  # the clock only warns: the planned epochs still run, so results stay reproducible
                entry["corrective_actions"].append("TIME_OVER_BUDGET")
                self.log(f"[WARN] epoch {epoch}: three times the {cfg.time_budget_s:.0f}s budget has elapsed; this "
                         "machine is slower than the fixed cost model assumes (training continues)")
            if self.checkpoint_dir is not None:
                try:  # a checkpoint only ever saves work: failing to write one changes no result
                    self._checkpoint(epoch, fingerprint, opt, gen, train_idx, val_idx, ladder, history, frames,
                                     best, step, lr)
                except OSError as e:
                    self.log(f"[WARN] epoch {epoch}: checkpoint not written ({e}); training continues")
        if bar is not None:
            bar.close()
        if best[1] is not None:
            net.load_state_dict(best[1])
        net.eval()
        relationships = self.relationship_report()
        for w in (relationships or {}).get("validation", {}).get("warnings", []):
            self.log(f"[WARN] relationship scoring: {w}")
        return {
            "metadata": {"initial_lr": cfg.lr, "max_lr": cfg.lr * cfg.max_lr_multiplier, "total_epochs": cfg.epochs,
                         "batch_size": bs, "scheduler_type": "OneCycle (15% warmup, 5% peak, cosine)",
                         "dropout_scheduler_enabled": True, "initial_dropout": cfg.dropout_start,
                         "final_dropout": cfg.dropout_end, "d_model": net.joint.d_model, "n_rows": self.n_rows,
                         "n_train_rows": int(len(train_idx)), "n_validation_rows": int(len(val_idx)),
                         "n_rows_sampled_out": int(truncated),
                         "n_columns": len(net.columns), "steps": step, "best_epoch": best[2],
                         "best_validation_loss": None if best[1] is None else best[0],
                         "seconds": round(time.monotonic() - start, 2)},
            "timeline": history,
            "corrective_actions": ladder.actions,
            "movie": [f.tolist() for f in frames],
            **({"relationships": relationships} if relationships else {}),
        }

    def _prune(self, epoch: int, held_out: torch.Tensor, temperature: float) -> dict | None:
        """Causal relationship pruning (``training.relations``): measure the active pairs, set the next
        mask (before the validation pass, so the validated state is the one kept), return the swap log."""
        if self.pruner is None:
            return None
        rel = self.net.joint.relationships
        self._ablate(epoch, held_out[:ABLATION_ROWS], temperature)
        mask, swap = self.pruner.decide(epoch, rel.active.cpu().numpy())
        if swap is None:
            return None
        rel.set_active(mask)
        name = lambda p: "×".join(self.net.columns[i] for i in self.pruner.pairs[p])  # noqa: E731
        return {**swap, **{k: [name(p) for p in swap[k]] for k in ("disabled", "enabled", "protected")}}

    @torch.no_grad()
    def _ablate(self, epoch: int, rows: torch.Tensor, temperature: float) -> None:
        """Per-column losses on ``rows`` with every active pair and with random halves of them blanked
        (their tokens replaced by the masked-relationship token, so the sequence stays as trained): the
        same weights, rows and column masks each time (``RelationshipPruner.observe``). The column
        encoders run once; only the joint encoder runs per ablation, on the two masked views."""
        net, was = self.net, self.net.training
        rel = net.joint.relationships
        active = rel.active.clone()
        removed = self.pruner.removal_sets(epoch, active.cpu().numpy())
        batch = gather(self.data, rows, net.device)
        net.eval()
        cols_full, cols_short = net.encode_columns(batch)
        present = net.present(batch)
        views = torch.Generator().manual_seed(self.cfg.seed + 1000 + epoch)  # the same masks for every forward
        vis1, vis2 = (v.to(present.device) for v in L.complementary_views(present.cpu(), views))

        def per_column(blank: torch.Tensor | None) -> np.ndarray:
            rel.blank = blank
            embs = net.joint(cols_full.repeat(2, 1, 1), torch.cat([vis1, vis2]))[0].chunk(2)
            losses = self._column_losses(embs, (vis1, vis2), cols_full, cols_short, present, temperature)
            return torch.nan_to_num(losses, nan=0.0).cpu().numpy()

        try:
            reference = per_column(None)
            deltas = [per_column(torch.from_numpy(r).to(active.device)) - reference for r in removed]
        finally:
            rel.blank = None
        net.train(was)
        self.pruner.observe(epoch, active.cpu().numpy(), removed, np.stack(deltas))

    def relationship_report(self) -> dict | None:
        """Every candidate pair's scores and status (active in the served state), the validation, the swaps."""
        if self.pruner is None:
            return None
        return self.pruner.report(self.net.joint.relationships.active.cpu().numpy(), self.net.columns)

    def _checkpoint(self, epoch, fingerprint, opt, gen, train_idx, val_idx, ladder, history, frames, best,
                    step, lr) -> None:
        """Everything the next epoch depends on, written as checkpoint ``epoch`` (``checkpoint``)."""
        opt_tensors, opt_state = checkpoint.optimizer_tensors(opt)
        tensors = {**{f"net.{k}": v for k, v in self.net.state_dict().items()}, **opt_tensors,
                   **{f"best.{k}": v for k, v in (best[1] or {}).items()},
                   "rng.gen": gen.get_state(), "rng.torch": torch.get_rng_state(),
                   **({"rng.cuda": torch.cuda.get_rng_state(self.net.device)} if self.net.device.type == "cuda" else {}),
                   "idx.train": train_idx, "idx.val": val_idx}
        state = {"fingerprint": fingerprint, "optimizer": opt_state, "ladder": dataclasses.asdict(ladder),
                 "history": history, "frames": [np.asarray(f).tolist() for f in frames], "step": step, "lr": lr,
                 "best_monitored": best[0], "best_epoch": best[2], "column_losses": self.column_losses.tolist(),
                 "pruner": None if self.pruner is None else self.pruner.state()}
        checkpoint.save(self.checkpoint_dir, epoch, tensors, state)

    @torch.no_grad()
    def _validate(self, val_idx: torch.Tensor, temperature: float) -> tuple[float, torch.Tensor]:
        self.net.eval()
        gen = torch.Generator().manual_seed(self.cfg.seed + 7)  # the same masks every epoch
        val_idx = val_idx[: self.cfg.validation_rows or None]  # the budget's share of the validation rows
        bs = min(self.cfg.batch_size, len(val_idx))
        total, embs, n = 0.0, [], 0
        for b in range(max(1, len(val_idx) // bs)):
            idx = val_idx[b * bs:(b + 1) * bs]
            if len(idx) < 2:
                continue
            parts = self._losses(gather(self.data, idx, self.net.device), gen, temperature)
            total += self._fixed(parts)
            embs.append(parts["embeddings"])
            n += 1
        self.net.train()
        return (total / max(n, 1), torch.cat(embs) if embs else torch.zeros(0, self.net.joint.d_model))

    @torch.no_grad()
    def _short(self, rows: torch.Tensor) -> np.ndarray:
        was = self.net.training
        self.net.eval()
        _, short = self.net(gather(self.data, rows, self.net.device))
        self.net.train(was)
        return short.cpu().numpy().round(4)

    def _rotate(self, train_idx, val_idx, epoch):
        """Spec §13 gradual rotation: swap 10 % of validation rows with training rows (seeded by epoch)."""
        g = torch.Generator().manual_seed(self.cfg.seed + epoch)
        k = max(1, int(len(val_idx) * self.cfg.rotation_fraction))
        vi = torch.randperm(len(val_idx), generator=g)[:k]
        ti = torch.randperm(len(train_idx), generator=g)[:k]
        train_idx, val_idx = train_idx.clone(), val_idx.clone()
        train_idx[ti], val_idx[vi] = val_idx[vi].clone(), train_idx[ti].clone()
        self.log(f"epoch {epoch}: rotated {k} rows between training and validation")
        return train_idx, val_idx
