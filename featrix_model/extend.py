"""Extending a trained embedding space with new columns (spec §19 "Extending Embedding Spaces").

    es2 = extend_space(es, df_with_new_columns)     # es.extend(df) calls this; es is left unchanged

The new columns (those of ``df`` the space's plan has never seen) are planned alone, with the
space's codec context and seed, and appended after the old columns. The combined network is built
as a fresh fit would build it, then every tensor of the old network is copied into it by key and
shape (``map_state``): whole tensors that exist in both with the same shape, and the old columns'
rows of tensors that grew along their leading per-column (or per-scalar-column) dimension. What
cannot be mapped keeps its fresh initialisation and is logged.

Training takes a quarter of the base space's epochs, in two phases (spec: epochs/8 + epochs/8):

* phase 1 — everything copied from the old network is frozen (``freeze_copied``): the old columns'
  encoders and in-converters, the shared joint parts (transformer, relationship extractor, [CLS],
  norms, output head) and the old columns' rows of the per-column tensors; only what is new trains
  (the new columns' encoders, in-converters, position and MARGINAL rows, prediction-head rows,
  decoder rows).
* phase 2 — everything trains jointly.

How rows are frozen: a per-column tensor such as ``joint.column_position`` is one parameter, so
``requires_grad`` cannot freeze part of it, and a gradient hook that zeroes the old rows is not
enough either: AdamW's decoupled weight decay shrinks every element of a parameter that has a
gradient, zero or not. During phase 1 such a tensor is therefore parametrized
(``torch.nn.utils.parametrize``): the module reads ``cat(old rows (a buffer), trainable[n_old:])``,
so the old rows are not read from the optimised parameter at all, and removing the parametrization
after phase 1 (``leave_parametrized=True``) writes exactly the old rows back. Whole frozen tensors
get ``requires_grad=False`` (no gradient, so AdamW neither steps nor decays them); BatchNorm layers
whose state is frozen keep their running statistics (momentum 0), and every frozen buffer is put
back as it was when phase 1 ends (BatchNorm's batch counter still counts); the old encoders' epoch-end
schedules (strategy pruning, the semantic floor) are not run again — they finished in the base
fit — and the new encoders' schedules run once over the extension's epochs, across both phases.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import re
import time

import pandas as pd
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils import parametrize

from featrix_model import inputs
from featrix_model.columns import ColumnPlan, default_column_types, plan_columns
from featrix_model.network import EmbeddingNetwork
from featrix_model.building import build_network, use_threads
from featrix_model.codecs.base import CodecContext
from featrix_model.training import parallel
from featrix_model.training.split import split_divergence, split_warnings
from featrix_model.training.trainer import Trainer, cuda_determinism
from featrix_model.types import INTERNAL_PREFIX

log = logging.getLogger("featrix_model")

EPOCH_FRACTION = 4  # spec §19: the extension trains epochs/4 of the base space's epochs (epochs/8 per phase)
_PER_COLUMN_MODULES = re.compile(r"^(encoders|joint\.in_converters)\.(\d+)\.")


# ------------------------------------------------------------------ entry point

def extend_space(es: EmbeddingSpace, df: pd.DataFrame, *, epochs: int | None = None, seed: int | None = None,
                 progress: bool = False, exclude: tuple[str, ...] = (), keep: tuple[str, ...] = (),
                 column_types: dict | None = None, keep_training_rows: bool = True, device: str | None = None,
                 threads: int | None = None) -> EmbeddingSpace:
    """A new space with ``df``'s new columns added to ``es`` (which is left unchanged).

    ``df`` holds the space's columns and at least one new usable column. ``epochs``: the extension's
    total (default: the base space's epochs / 4, at least 2; for a space that is itself an
    extension, its original fit's epochs), split between phase 1 (new columns
    train, everything else frozen) and phase 2 (all train). ``seed``: the training seed (default the
    base's). ``exclude``/``keep``/``column_types``: as in ``EmbeddingSpace.fit``, for the new columns.
    ``threads`` (default: the base's recorded setting) and ``device`` (default: where ``es`` is)."""
    started = time.monotonic()
    if getattr(es, "kind", None) != "table":
        kind = getattr(es, "kind", type(es).__name__)
        raise TypeError(f"extend works on a table embedding space, not a {kind} space")
    inputs.check_table(df)
    df = df.reset_index(drop=True)
    old_plan, base_cfg = es.plan, es.config
    missing = [c for c in old_plan.columns if c not in df.columns]
    if missing:
        raise ValueError(f"extend needs the space's own columns as well as the new ones: column(s) {missing} of the "
                         f"space are not in the data (its columns: {old_plan.columns}).")
    threads = use_threads(threads if threads is not None else base_cfg.threads)
    new_plan = plan_new_columns(old_plan, df, seed=base_cfg.seed, exclude=exclude, keep=keep, column_types=column_types,
                                space_class=type(es))
    plan = merge_plans(old_plan, new_plan)
    # the original fit's epochs, also when ``es`` is itself an extension (its config holds the extension's)
    base_epochs = int((es.timeline_.get("metadata") or {}).get("extend", {}).get("base_epochs") or base_cfg.epochs)
    total = _total_epochs(epochs, base_epochs)
    p1 = max(1, total // 2)
    p2 = total - p1
    seed = base_cfg.seed if seed is None else int(seed)
    device = device or str(es.net.device)
    cfg = dataclasses.replace(base_cfg, epochs=total, seed=seed, threads=threads, device=device,
                              world_size=parallel.world()[0], reasons=dict(base_cfg.reasons))
    if cfg.world_size == 1:
        cfg.reasons.pop("world_size", None)  # the base space's data-parallel reason is not this run's
    why = ("set by the caller" if epochs is not None
           else f"a quarter of the base space's {base_epochs} epochs, at least 2")
    cfg.reasons["epochs"] = f"{total} (extend: {why}): phase 1 {p1} (new columns only), phase 2 {p2} (all jointly)"
    if seed != base_cfg.seed:
        cfg.reasons["seed"] = "set by the caller (extend)"
    cuda_determinism(device, cfg.deterministic, cfg.allow_tf32)

    net = build_network(plan, cfg, es.pairs, es.groups_).to(device)
    mapping = map_state(es.net, net, len(old_plan.columns), len(old_plan.scalar_indices()))
    decisions = list(es.decisions) + list(new_plan.decisions) + mapping.notes(plan, len(old_plan.columns))
    train_df, sampled_out, line = _training_rows(df, cfg)
    if line:
        decisions.append(line)
    data = plan.transform(train_df)
    old_names, new_names = list(old_plan.columns), list(new_plan.columns)

    schedules = _EpochSchedules(net, len(old_names), total)
    timelines, trainers = [], []
    try:
        undo = freeze_copied(net, mapping)
        try:
            schedules.phase(offset=0)
            trainers.append(_trainer(net, dataclasses.replace(cfg, epochs=p1), data, len(train_df)))
            timelines.append(trainers[-1].fit(progress=progress))
        finally:
            undo()
        decisions.append(f"extend: phase 1 trained {len(new_names)} new column(s) {new_names} with {len(old_names)} "
                         f"old column(s) and the shared joint encoder frozen, {p1} epoch(s)")
        schedules.phase(offset=p1)
        trainers.append(_trainer(net, dataclasses.replace(cfg, epochs=p2), data, len(train_df)))
        timelines.append(trainers[-1].fit(progress=progress))
    finally:
        schedules.restore()
    decisions.append(f"extend: phase 2 fine-tuned all {len(plan.columns)} columns jointly, {p2} epoch(s); "
                     f"{total} epochs in all ({why})")

    timeline = merge_timelines(timelines, base_epochs=base_epochs, trained=new_names, frozen=old_names,
                               base=es.timeline_)
    timeline["metadata"]["fit_seconds"] = round(time.monotonic() - started, 2)
    kl = split_divergence(train_df, plan.columns, *trainers[-1].initial_split)
    timeline["metadata"]["split_kl"] = kl
    for line in split_warnings(kl, len(trainers[-1].initial_split[1])):
        (log.warning if line.startswith("[WARN]") else log.info)(line)
        decisions.append(line)
    timeline["metadata"]["n_rows_in"] = len(df)
    timeline["metadata"]["n_rows_sampled_out"] = sampled_out + timeline["metadata"].get("n_rows_sampled_out", 0)
    for d in decisions[len(es.decisions):]:
        log.info(d)
    out = type(es)(plan, net, cfg, list(es.pairs), timeline=timeline, pair_ranking=list(es.pair_ranking_ or []),
                         decisions=decisions, training_rows=df[plan.all_columns] if keep_training_rows else None)
    out.column_losses_ = trainers[-1].column_losses.tolist()
    out.groups_ = list(es.groups_)  # the base's groups (its column indices are unchanged: new columns come last)
    out.train_embeddings_ = out._encode_prepared(df, 0)
    out.mi_ = out._mutual_information(data, len(train_df))
    return out


# ------------------------------------------------------------------ plans

def plan_new_columns(old: ColumnPlan, df: pd.DataFrame, *, seed: int, space_class: type, exclude=(), keep=(),
                     column_types: dict | None = None) -> ColumnPlan:
    """Plan ``df``'s columns that ``old`` does not know (excluded ones count as known) with the
    space's codec context (``space_class``: what a JSON column's child space is); raise if none is
    left to add, saying why."""
    known = set(old.all_columns) | set(old.info)
    new = [c for c in df.columns if c not in known and not str(c).startswith(INTERNAL_PREFIX)]
    unknown = [c for c in (*exclude, *keep) if c not in new]
    if unknown:
        raise ValueError(f"exclude/keep name column(s) {unknown} that are not new columns of the data; "
                         f"new columns: {new}")
    if not new:
        raise ValueError("extend found no new column: every column of the data is already known to the space "
                         f"(its columns: {old.columns}"
                         + (f"; excluded when it was fitted: {[c for c in old.all_columns if c not in old.columns]}"
                            if len(old.all_columns) > len(old.columns) else "")
                         + "). Pass a frame with the column(s) to add.")
    plan = plan_columns(df[new], exclude=exclude, keep=keep, column_types=column_types,
                        context=CodecContext(seed=seed, space_class=space_class,
                                             column_types=column_types or default_column_types()))
    if not plan.columns:
        why = "; ".join(f"'{c}': {str(plan.info[c]['reason']).rstrip('.')}" for c in new)
        raise ValueError(f"none of the new column(s) {new} can be added: {why}. "
                         "Pass keep=(...) to keep a column the filter excluded.")
    return plan


def merge_plans(old: ColumnPlan, new: ColumnPlan) -> ColumnPlan:
    """Old columns first, in their order, then the new ones (the network's column indices rely on it)."""
    return ColumnPlan(columns=list(old.columns) + list(new.columns),
                      all_columns=list(old.all_columns) + [c for c in new.all_columns if c not in old.all_columns],
                      info={**copy.deepcopy(old.info), **copy.deepcopy(new.info)},
                      codecs={**old.codecs, **new.codecs},
                      encoder_classes={**old.encoder_classes, **new.encoder_classes},
                      decisions=list(old.decisions) + list(new.decisions))


def _total_epochs(epochs: int | None, base_epochs: int) -> int:
    if epochs is None:
        return max(2, int(base_epochs) // EPOCH_FRACTION)
    if int(epochs) < 2:
        raise ValueError(f"extend trains in two phases, so it needs epochs >= 2 (got {epochs})")
    return int(epochs)


def _training_rows(df: pd.DataFrame, cfg) -> tuple[pd.DataFrame, int, str | None]:
    """The rows tensorised for training: all, or the same seeded sample ``EmbeddingSpace.fit`` takes
    when the configuration caps training rows."""
    if cfg.max_train_rows and cfg.max_train_rows < len(df) * (1 - cfg.val_fraction) and not cfg.every_row_each_epoch:
        n_keep = min(len(df), int(math.ceil(cfg.max_train_rows / (1 - cfg.val_fraction))))
        return (df.sample(n=n_keep, random_state=cfg.seed).reset_index(drop=True), len(df) - n_keep,
                f"training rows: a seeded sample of {n_keep:,} of {len(df):,} rows is tensorised for training "
                "(the base space's row cap); every row can be encoded")
    return df, 0, None


# ------------------------------------------------------------------ weights

@dataclasses.dataclass
class StateMapping:
    """What ``map_state`` did, by state-dict key."""

    whole: set[str]  # copied as a whole (frozen in phase 1)
    rows: dict[str, int]  # key → number of leading rows copied (those rows frozen in phase 1)
    fresh: list[str]  # new network's keys with no old counterpart: per-column parts of new columns
    unmapped: list[str]  # keys that exist in the old network but could not be mapped (fresh initialisation)
    dropped: list[str]  # old keys the new network does not have

    def notes(self, plan: ColumnPlan, n_old: int) -> list[str]:
        out = [f"extend: copied {len(self.whole)} tensors whole and the old columns' rows of {len(self.rows)} "
               f"({', '.join(sorted(self.rows)) or 'none'}) from the base space; the new column(s) "
               f"{plan.columns[n_old:]} start from a fresh initialisation"]
        if self.unmapped:
            out.append(f"[WARN] extend: {len(self.unmapped)} tensor(s) of the base space could not be mapped by key "
                       f"and shape and keep their fresh initialisation: {self.unmapped}")
        if self.dropped:
            out.append(f"[WARN] extend: {len(self.dropped)} tensor(s) of the base space have no place in the extended "
                       f"network: {self.dropped}")
        return out


@torch.no_grad()
def map_state(old: EmbeddingNetwork, new: EmbeddingNetwork, n_old_cols: int, n_old_scalars: int) -> StateMapping:
    """Copy ``old``'s state into ``new`` by key and shape, generically: a key in both with the same
    shape is copied whole; a tensor that grew only along its first dimension from the old to the new
    number of columns (or of scalar columns) gets the old rows copied into its leading rows (old
    columns come first, so the old scalar columns' rows come first too). Everything else keeps its
    fresh initialisation. ``old`` is only read."""
    n_new_cols, n_new_scalars = len(new.columns), len(new.scalar_index)
    grow = {(n_old_cols, n_new_cols), (n_old_scalars, n_new_scalars)}
    src, dst = old.state_dict(), new.state_dict()
    mapping = StateMapping(set(), {}, [], [], [k for k in src if k not in dst])
    for key, t in dst.items():
        o = src.get(key)
        if o is None:
            m = _PER_COLUMN_MODULES.match(key)
            (mapping.fresh if m and int(m.group(2)) >= n_old_cols else mapping.unmapped).append(key)
        elif o.shape == t.shape:
            t.copy_(o)
            mapping.whole.add(key)
        elif o.dim() == t.dim() >= 1 and o.shape[1:] == t.shape[1:] and (o.shape[0], t.shape[0]) in grow:
            t[: o.shape[0]].copy_(o)
            mapping.rows[key] = int(o.shape[0])
        else:
            mapping.unmapped.append(key)
    return mapping


class FrozenRows(nn.Module):
    """Parametrization: the first ``n`` rows come from a buffer, the rest from the parameter."""

    def __init__(self, rows: torch.Tensor):
        super().__init__()
        self.register_buffer("rows", rows.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.rows, x[self.rows.shape[0]:]], dim=0)


def freeze_copied(net: nn.Module, mapping: StateMapping):
    """Freeze everything ``map_state`` copied (phase 1); returns the function that undoes it."""
    params = dict(net.named_parameters())
    frozen = [params[k] for k in mapping.whole if k in params and params[k].requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    rowed = []
    for key, n in mapping.rows.items():
        if key not in params:
            continue  # a buffer: nothing trains it
        path, _, name = key.rpartition(".")
        module = net.get_submodule(path)
        parametrize.register_parametrization(module, name, FrozenRows(params[key][:n]))
        rowed.append((module, name))
    buffers = dict(net.named_buffers())
    kept = {k: buffers[k].clone() for k in mapping.whole if k in buffers}  # e.g. BatchNorm's batch counter
    del buffers
    bns = []
    for path, m in net.named_modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats:
            keys = [f"{path}.{k}" for k, _ in [*m.named_parameters(recurse=False), *m.named_buffers(recurse=False)]]
            if keys and all(k in mapping.whole for k in keys):
                bns.append((m, m.momentum))
                m.momentum = 0.0  # running = (1 - 0) · running + 0 · batch: unchanged

    def undo() -> None:
        for module, name in rowed:
            parametrize.remove_parametrizations(module, name, leave_parametrized=True)
        for p in frozen:
            p.requires_grad_(True)
        for m, momentum in bns:
            m.momentum = momentum
        current = dict(net.named_buffers())  # looked up now: a module may have replaced a buffer object
        with torch.no_grad():  # a frozen module's buffers are its base state, whatever the training pass did
            for k, v in kept.items():
                current[k].copy_(v)

    return undo


class _EpochSchedules:
    """Encoders' epoch-end hooks during an extension: the old encoders' (already finished in the
    base fit) are skipped; the new encoders' see one schedule over both phases (epoch and progress
    counted over the whole extension, not restarted for phase 2)."""

    def __init__(self, net: EmbeddingNetwork, n_old: int, total: int):
        self.encoders = list(net.encoders)
        self.n_old, self.total = n_old, total

    def phase(self, offset: int) -> None:
        self.restore()
        for i, enc in enumerate(self.encoders):
            if i < self.n_old:
                enc.on_epoch_end = _skip
            else:
                enc.on_epoch_end = self._shifted(enc.on_epoch_end, offset)

    def _shifted(self, hook, offset: int):
        return lambda epoch, progress: hook(offset + epoch, (offset + epoch) / self.total)

    def restore(self) -> None:
        for enc in self.encoders:
            enc.__dict__.pop("on_epoch_end", None)


def _skip(epoch: int, progress: float) -> list[str]:
    return []


def _trainer(net, cfg, data, n_rows) -> Trainer:
    return Trainer(net, cfg, data, n_rows, log=log.info)


# ------------------------------------------------------------------ timeline

def merge_timelines(timelines: list[dict], *, base_epochs: int, trained: list[str], frozen: list[str],
                    base: dict | None = None) -> dict:
    """One timeline of both phases: epochs numbered through, each entry tagged with its phase. Any
    other section a trainer reports (e.g. a relationship report) comes from the last phase that has
    it, else from the base space's timeline ``base`` (the state it describes was copied unchanged)."""
    entries, actions, offset, phases = [], [], 0, []
    for phase, tl in enumerate(timelines, 1):
        for e in tl["timeline"]:
            entries.append({**e, "epoch": offset + e["epoch"], "phase": phase, "phase_epoch": e["epoch"]})
        actions += [{**a, "phase": phase, **({"epoch": offset + a["epoch"]} if isinstance(a.get("epoch"), int) else {})}
                    for a in tl.get("corrective_actions", [])]
        meta = tl["metadata"]
        phases.append({"phase": phase, "epochs": meta["total_epochs"], "metadata": meta,
                       "trained": list(trained) if phase == 1 else list(frozen) + list(trained),
                       "frozen": list(frozen) if phase == 1 else []})
        offset += meta["total_epochs"]
    last = timelines[-1]["metadata"]
    metadata = {**last, "total_epochs": offset, "steps": sum(p["metadata"]["steps"] for p in phases),
                "seconds": round(sum(p["metadata"]["seconds"] for p in phases), 2),
                "best_epoch": offset - last["total_epochs"] + last["best_epoch"] if last.get("best_epoch") else 0,
                "extend": {"base_epochs": base_epochs, "phases": phases}}
    own = {"metadata", "timeline", "corrective_actions", "movie"}
    extra = {k: v for k, v in (base or {}).items() if k not in own}
    for tl in timelines:
        extra.update({k: v for k, v in tl.items() if k not in own})
    return {"metadata": metadata, "timeline": entries, "corrective_actions": actions,
            "movie": [f for tl in timelines for f in tl.get("movie", [])], **extra}


__all__ = ["extend_space", "map_state", "freeze_copied", "merge_plans", "plan_new_columns", "FrozenRows"]
