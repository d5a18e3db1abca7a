"""Building a space's network and its training settings: one place for both kinds of space."""

from __future__ import annotations

import torch

from featrix_model.columns import ColumnPlan
from featrix_model.groups import group_indices
from featrix_model.joint import JointEncoder
from featrix_model.network import EmbeddingNetwork
from featrix_model.training.config import TrainingConfig

DEFAULT_THREADS = 1


def use_threads(threads: int | None) -> int:
    """Set torch's thread count to ``threads`` (None: 1, the default) and return it. It is a recorded
    setting: a different count sums floating-point numbers in another order, so it never comes from
    the machine's core count or from what ran before in the process."""
    threads = int(threads or DEFAULT_THREADS)
    torch.set_num_threads(threads)
    return threads


def training_settings(config: TrainingConfig | None = None, *, threads: int | None = None,
                      epochs: int | None = None, max_epochs: int | None = None, lr: float | None = None,
                      batch_size: int | None = None, d_model: int | None = None, deterministic: bool | None = None,
                      allow_tf32: bool | None = None) -> dict:
    """The caller's training settings as overrides of the automatic choices: every field of ``config``
    (if given; its seed, device and budget are the fit's own arguments), then each keyword that is not None."""
    own = {"reasons", "seed", "device", "time_budget_s"}
    out = {k: v for k, v in config.to_dict().items() if k not in own} if config is not None else {}
    given = {"threads": threads, "epochs": epochs, "max_epochs": max_epochs, "lr": lr, "batch_size": batch_size,
             "d_model": d_model, "deterministic": deterministic, "allow_tf32": allow_tf32}
    out.update({k: v for k, v in given.items() if v is not None})
    return out


def build_network(plan: ColumnPlan, cfg: TrainingConfig, pairs: list, groups: list[dict] | None = None) -> EmbeddingNetwork:
    """Deterministic construction from the plan and config (same seed → same initial weights);
    ``groups``: hybrid column groups (``featrix_model.groups.detect_groups``) sharing a group embedding."""
    torch.manual_seed(cfg.seed)
    encoders = plan.build_encoders(cfg.d_model)
    joint = JointEncoder(len(plan.columns), cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.ff_mult,
                         cfg.attention_dropout, pairs, cfg.rel_mode, group_indices(groups or [], plan.columns))
    return EmbeddingNetwork(plan.columns, encoders, joint, plan.scalar_indices())
