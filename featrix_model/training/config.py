"""Auto-configuration (spec §4.4 "Zero Hyperparameters", §10, §14) sized for the device.

Every value has a reason in plain words. Anything can be overridden by keyword; an override is
recorded as "set by the caller".

The spec's defaults (d_model 256, all 8 ops for all pairs, 36,000 updates) are GPU-sized. On a
CPU the number of steps comes from the wall-clock budget through a *fixed* cost model (measured once
on the project's 2-core machine, see ``CPU_UNITS_PER_S``), not from a timer, so the same data +
config + seed always train the same number of steps — determinism survives the time budget.

**Rows-aware epochs (CPU).** The training dynamics the spec relies on act per epoch: NO_LEARNING
needs more than 15 epochs, validation rotation acts every 25, relationship pruning explores for 10
and prunes over the next 25, early stopping waits ``patience`` epochs. So a fit is planned as
``TARGET_EPOCHS`` epochs first and rows second: a table whose full passes fit the budget that many
times trains ``TARGET_EPOCHS`` full passes (and stops there — small tables need seconds, and more
passes over a few hundred rows overfit them); a larger one trains ``TARGET_EPOCHS`` epochs of a fresh
seeded sample of its rows each (``rows_per_epoch``), as many rows as the budget affords. Only when
even ``MIN_STEPS`` steps per epoch do not fit ``TARGET_EPOCHS`` times do the epochs fall.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from featrix_model.training.relations import (ABLATION_ROWS, ABLATIONS, MIN_EPOCHS, REDUCTION_EPOCHS,
                                             exploration_epochs, pool_size)

# Step time = per-column cost (encoders, in-converters, heads: Python-bound small ops) + transformer
# work of seq * (12 d^2 L + 2 seq d L) "units" per row-view. Fitted on full training steps here
# (flights 19 cols / penguins 8 / breast_cancer 30, batch 32 and 128, d=64, 1 thread): slope
# 4.8–5.3e9 units/s, intercept 2.5–2.75 ms per column; predictions within 10 %.
CPU_UNITS_PER_S = 4.9e9
PER_COLUMN_S = 0.0026
VIEWS = 3  # unmasked + two complementary masked views per step (spec §8)
TARGET_UPDATES = 36_000  # spec §4.4 (GPU, where no budget rules)
TARGET_EPOCHS = 60  # CPU: enough epochs for the ladder, rotation, pruning and early stopping to act
MIN_STEPS = 4  # CPU: fewest steps per epoch before the epochs themselves fall
WIDE_COLUMNS = 50  # from this many columns the space gets twice the width (CPU 64 → 128; GPU 128 → 256)
PRUNE_MIN_STEPS = 8  # CPU: fewer steps per epoch with the candidate pool priced → no relationship pruning
MIN_BATCH = 32  # CPU: the batch a budget-bound wide table may shrink to before its epochs fall
MIN_PATIENCE = 10
MAX_VALIDATION_ROWS = 4096  # validation rows scored per epoch when the budget affords full passes


@dataclass
class TrainingConfig:
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    ff_mult: int = 4
    attention_dropout: float = 0.1
    dropout_start: float = 0.5
    dropout_end: float = 0.25
    batch_size: int = 128
    lr: float = 2e-4
    max_lr_multiplier: float = 3.0
    weight_decay: float = 1e-2
    epochs: int = 10
    time_budget_s: float = 150.0
    temperature: float = 0.1
    rel_mode: str = "fused"
    max_pairs: int = 10
    relationship_pool: int = 0  # candidate pairs explored and pruned down to max_pairs (0: max_pairs, no pruning)
    val_fraction: float = 0.1
    seed: int = 0
    threads: int = 1
    world_size: int = 1  # processes training data-parallel (training.parallel); it changes result bytes
    patience: int = 100
    min_delta: float = 1e-4
    clip_ratio: float = 2.0
    rotation_every: int = 25
    rotation_fraction: float = 0.1
    reconstruction_weight: float = 0.1
    movie_sample: int = 0
    max_train_rows: int = 0
    validation_rows: int = 0  # validation rows scored per epoch (a fixed set; 0: all)
    rows_per_epoch: int = 0  # 0: every training row each epoch; else a fresh seeded sample of this many per epoch
    every_row_each_epoch: bool = False
    warm_start: bool = False  # a space that predictors fine-tune (the relational parent level): MIN_EPOCHS epochs
    max_epochs: int = 0  # 0: no cap beyond the budget
    device: str = "cpu"
    deterministic: bool = True  # CUDA: deterministic kernels (CPU training is deterministic anyway)
    allow_tf32: bool = False  # CUDA: TF32 matmuls and convolutions, faster and not FP32-exact (opt-in)
    reasons: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _pow2(x: float) -> int:
    return int(2 ** round(math.log2(max(1.0, x))))


def step_seconds(cfg: TrainingConfig, n_cols: int, n_rel_tokens: int) -> float:
    """Predicted seconds per optimizer step from the fixed CPU cost model."""
    seq = 1 + n_cols + n_rel_tokens
    d, L = cfg.d_model, cfg.n_layers
    units = VIEWS * cfg.batch_size * seq * (12 * d * d * L + 2 * seq * d * L)
    return PER_COLUMN_S * n_cols + units / CPU_UNITS_PER_S


def auto_config(n_rows: int, n_cols: int, *, device: str = "cpu", time_budget_s: float | None = None,
                **overrides) -> TrainingConfig:
    """Choose every training setting from the data size and the device, with reasons."""
    cfg = _auto_config(n_rows, n_cols, device, time_budget_s, overrides, narrow=False)
    floor = min(MIN_EPOCHS, int(overrides.get("max_epochs") or MIN_EPOCHS))  # a caller's cap is not the budget's
    if (cfg.d_model > 64 and device == "cpu" and cfg.epochs < floor and overrides.get("d_model") is None
            and not overrides.get("epochs")):
        cfg = _auto_config(n_rows, n_cols, device, time_budget_s, overrides, narrow=True)
    return cfg


def _auto_config(n_rows: int, n_cols: int, device: str, time_budget_s: float | None, overrides: dict, *,
                 narrow: bool) -> TrainingConfig:
    cfg, why = TrainingConfig(), {}
    gpu = device != "cpu"
    cfg.device = device

    cfg.batch_size = min(2048, max(32, _pow2(n_rows / 100)))
    why["batch_size"] = f"min(2048, max(32, n_rows/100 = {n_rows / 100:.0f})) rounded to a power of 2"
    if not gpu and cfg.batch_size > 256:
        why["batch_size"] += (f"; capped at 256 on CPU (the rule gives {cfg.batch_size}): the time budget buys a fixed "
                              "number of row-passes, so a smaller batch gives ~8× more updates, and the per-column "
                              "InfoNCE logits grow with batch² (2048² × columns does not fit a CPU step)")
        cfg.batch_size = 256
    if overrides.get("batch_size") is not None:  # before what depends on it: temperature, epochs, row cap
        cfg.batch_size = int(overrides["batch_size"])
        why["batch_size"] = "set by the caller"
    if n_rows < 1000:
        cfg.lr, cfg.weight_decay, size = 5e-5, 0.1, "< 1K rows"
    elif n_rows < 5000:
        cfg.lr, cfg.weight_decay, size = 1e-4, 0.01, "1K–5K rows"
    elif n_rows <= 20000:
        cfg.lr, cfg.weight_decay, size = 2e-4, 1e-3, "5K–20K rows"
    else:
        cfg.lr, cfg.weight_decay, size = 3e-4, 1e-4, "> 20K rows"
    why["lr"] = f"{cfg.lr:g} for {size}; OneCycle peaks at 3× ({cfg.lr * 3:g})"
    why["weight_decay"] = f"{cfg.weight_decay:g} for {size} (5K–20K interpolated)"

    if gpu:
        big = n_cols >= 4 * WIDE_COLUMNS and n_rows >= 1_000_000
        d = 512 if big else 256 if (n_cols >= WIDE_COLUMNS or n_rows >= 100_000) else 128
        cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.rel_mode = d, 3, 8, "full"
        cfg.max_pairs = min(n_cols * (n_cols - 1) // 2, max(5, n_cols // 2))
        why["d_model"] = (f"{d} / 3 layers / 8 heads, 8 relationship tokens per pair on a GPU: the width follows the "
                          f"data ({n_rows:,} rows × {n_cols} columns; 128 below {WIDE_COLUMNS} columns and 100K rows, "
                          f"256 from there, 512 from {4 * WIDE_COLUMNS} columns and 1M rows — more capacity than the "
                          "data can fill only overfits)")
    else:
        wide = n_cols >= WIDE_COLUMNS and not narrow
        cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.rel_mode = (128 if wide else 64), 2, 4, "fused"
        cfg.max_pairs = min(n_cols * (n_cols - 1) // 2, max(5, n_cols // 2))
        why["d_model"] = (f"{cfg.d_model} / 2 layers / 4 heads on CPU: "
                          + (f"{n_cols} columns ≥ {WIDE_COLUMNS} get twice the width (measured on a 64-column table: "
                             "linear probe 0.93 at d=128 against 0.88 at d=64 on the same budget)" if wide else
                             f"below {WIDE_COLUMNS} columns 64 is enough (a 30-column table probed the same at 128, an "
                             "11-column one +0.008) and a step costs a quarter")
                          + "; a third layer never helped on this budget (measured on 11, 30 and 64 columns)")
        if narrow:
            why["d_model"] = (f"64 / 2 layers / 4 heads on CPU: {n_cols} columns would get 128, but at that width the "
                              f"budget affords fewer than {MIN_EPOCHS} epochs (too few for pruning and the ladder); "
                              "a larger time budget gives the wider space")
        cfg.attention_dropout = 0.0
        why["attention_dropout"] = ("0 inside the transformer on CPU: drawing its dropout masks took ~20% of a training "
                                    "step (profiled); the scheduled 0.5→0.25 dropout still regularises encoders and "
                                    "in-converters, and CPU budgets allow only a few epochs, far from overfitting")
    for k in ("d_model", "n_layers", "n_heads", "rel_mode", "max_pairs"):  # before the cost model prices a step
        if overrides.get(k) is not None:
            setattr(cfg, k, overrides[k])
    why["max_pairs"] = (f"{cfg.max_pairs} column pairs get relationship tokens "
                        f"({'8 tokens each' if cfg.rel_mode == 'full' else 'one fused token each (8 ops → 1 token)'}): "
                        "the floor of max(5, n_cols/2) active pairs; pairs ranked by mutual information of "
                        "binned values")
    cfg.temperature = adaptive_temperature(cfg.batch_size, n_cols)
    why["temperature"] = _temperature_reason(cfg.temperature)

    budget = time_budget_s if time_budget_s is not None else (None if gpu else 150.0)
    cfg.time_budget_s = budget or 0.0
    n_train = max(1, math.ceil(n_rows * (1 - cfg.val_fraction)))
    steps_per_epoch = max(1, math.ceil(n_train / cfg.batch_size))
    if budget:
        _plan_cpu_epochs(cfg, why, n_cols, n_train, steps_per_epoch, budget, overrides)
        if not gpu:
            _shrink_batch(cfg, why, n_cols, n_train, budget, overrides)
    else:
        target_epochs = max(1, math.ceil(TARGET_UPDATES / steps_per_epoch))
        cfg.epochs = target_epochs
        why["epochs"] = f"{target_epochs} = {TARGET_UPDATES:,} updates / {steps_per_epoch} steps per epoch"
    why["time_budget_s"] = f"{cfg.time_budget_s:.0f}s wall clock" if budget else "none (GPU: the update target rules)"
    why["dropout"] = "0.5 for the first third, ramp to 0.25, hold"
    if gpu:
        why["deterministic"] = ("on: deterministic CUDA algorithms and cuBLAS workspace, cuDNN autotuning off, so two "
                                "fits with the same seed give identical bytes on one GPU (deterministic=False trades "
                                "that for speed)")
        why["allow_tf32"] = "off: matmuls in full FP32 (allow_tf32=True is faster and rounds to 10-bit mantissas)"
    else:
        why["deterministic"] = "on (CPU training is deterministic; the setting switches CUDA kernels only)"

    for k, v in overrides.items():
        if v is None:
            continue
        if not hasattr(cfg, k):
            raise TypeError(f"unknown training setting {k!r}; known: {sorted(f.name for f in fields(cfg))}")
        setattr(cfg, k, v)
        why[k] = "set by the caller"
    if gpu and not cfg.deterministic:
        why["deterministic"] = "off (set by the caller): faster CUDA kernels; two fits with the same seed may differ"
    if gpu and cfg.allow_tf32:
        why["allow_tf32"] = "on (set by the caller): faster TF32 matmuls, not FP32-exact"
    if cfg.max_epochs and cfg.epochs > cfg.max_epochs and overrides.get("epochs") is None:
        why["epochs"] = f"{cfg.max_epochs} (capped by max_epochs; the budget alone allowed {cfg.epochs})"
        cfg.epochs = cfg.max_epochs
    if overrides.get("patience") is None:
        cfg.patience = max(MIN_PATIENCE, cfg.epochs // 4)
        why["patience"] = (f"{cfg.patience} epochs without a validation improvement stop training: a quarter of the "
                           f"{cfg.epochs} epochs (at least {MIN_PATIENCE})")
    _plan_pool(cfg, why, n_cols, overrides)
    cfg.reasons = why
    return cfg


def _mean_rel_tokens(cfg: TrainingConfig, pool: int) -> float:
    """Relationship tokens per step, averaged over a fit that explores ``pool`` pairs and prunes to max_pairs."""
    per_pair = 8 if cfg.rel_mode == "full" else 1
    if pool <= cfg.max_pairs or cfg.epochs <= 0:
        return cfg.max_pairs * per_pair
    explore = exploration_epochs(cfg.epochs)
    reduce = min(REDUCTION_EPOCHS, max(0, cfg.epochs - explore))
    rest = max(0, cfg.epochs - explore - reduce)
    return per_pair * (explore * pool + reduce * (pool + cfg.max_pairs) / 2 + rest * cfg.max_pairs) / cfg.epochs


def _warm(cfg: TrainingConfig, overrides: dict) -> bool:
    return bool(overrides.get("warm_start") or cfg.warm_start)


def _target_epochs(cfg: TrainingConfig, overrides: dict) -> int:
    """The epochs a CPU plan aims at: the caller's, else MIN_EPOCHS for a warm start and TARGET_EPOCHS
    otherwise; under the caller's ``max_epochs``."""
    target = overrides.get("epochs") or (MIN_EPOCHS if _warm(cfg, overrides) else TARGET_EPOCHS)
    return min(int(target), int(overrides["max_epochs"])) if overrides.get("max_epochs") else int(target)


def _plan_cpu_epochs(cfg: TrainingConfig, why: dict, n_cols: int, n_train: int, steps_full: int, budget: float,
                     overrides: dict, price_pool: bool = True) -> None:
    """Rows-aware epochs (module docstring): TARGET_EPOCHS epochs first, rows per epoch from the budget.
    The caller's ``epochs`` are kept as given (the rows per epoch follow from them)."""
    warm = _warm(cfg, overrides)
    target = _target_epochs(cfg, overrides)
    pool = pool_size(n_cols * (n_cols - 1) // 2, cfg.max_pairs) if price_pool else cfg.max_pairs
    if overrides.get("relationship_pool") is not None:  # the caller's pool is what is priced
        pool = max(cfg.max_pairs, min(n_cols * (n_cols - 1) // 2, int(overrides["relationship_pool"])))
    cfg.epochs, cfg.rows_per_epoch, cfg.max_train_rows, cfg.validation_rows = target, 0, 0, 0
    if overrides.get("relationship_pool") is None:
        cfg.relationship_pool = 0  # decided by _plan_pool, unless a budget-starved plan rules pruning out below
    for k in ("rows_per_epoch", "max_train_rows", "validation_rows", "relationship_pool"):
        why.pop(k, None)
    step = step_seconds(cfg, n_cols, _mean_rel_tokens(cfg, pool if target >= MIN_EPOCHS else 0))
    total = budget / step  # step-equivalents the budget buys; a validation batch costs a third (forward only)
    bs = max(1, cfg.batch_size)
    n_val = max(0, round(n_train / (1 - cfg.val_fraction) * cfg.val_fraction))
    every_row = overrides.get("every_row_each_epoch") or cfg.every_row_each_epoch
    priced = f"the {budget:.0f}s budget affords ~{int(total):,} steps by the fixed CPU cost model ({step * 1000:.0f} ms/step)"
    full_val = min(n_val, MAX_VALIDATION_ROWS)
    prunable = pool > cfg.max_pairs
    # the pool was priced into this plan (the caller's epochs, or too few to prune, price no pool)
    priced_pool = price_pool and prunable and target >= MIN_EPOCHS and not overrides.get("epochs")

    def ablation(epochs: int) -> float:  # causal scoring's joint forwards (two views) per epoch, when pruning runs
        return (ABLATIONS + 1) * 2 * min(n_val, ABLATION_ROWS) / bs / VIEWS ** 2 if prunable and epochs >= MIN_EPOCHS else 0.0

    full_cost = steps_full + full_val / bs / VIEWS + ablation(target)
    if total >= target * full_cost or every_row:
        cfg.validation_rows = full_val
        if total >= target * full_cost:
            why["epochs"] = (f"{target} full passes of {steps_full} steps: enough epochs for the training dynamics "
                             f"to act; {priced}, and more passes over {n_train:,} rows would only overfit them")
            if warm and not overrides.get("epochs"):
                why["epochs"] = (f"{target} full passes of {steps_full} steps, the fewest with which relationship "
                                 "pruning and the intervention ladder act: this space is a warm start that predictors "
                                 "fine-tune, and longer self-supervised training went on lowering its validation loss "
                                 "while the fine-tuned predictors got worse (measured on a parent table of 1,092 rows: "
                                 f"AUC 0.78 after 15–30 epochs, 0.77 after 56–60); {priced}")
            return
        cfg.epochs = max(1, min(target, int(total // full_cost)))
        if cfg.epochs < MIN_EPOCHS and priced_pool:
            return _unpriced_pool(cfg, why, n_cols, n_train, steps_full, budget, overrides, _count(cfg.epochs, "epoch"))
        cfg.epochs = target if overrides.get("epochs") else cfg.epochs
        why["epochs"] = f"{cfg.epochs} full passes of {steps_full} steps (every row each epoch); {priced}"
        return

    def epoch_cost(steps: int, epochs: int) -> float:
        return steps + min(n_val, max(2 * bs, steps * bs // 2)) / bs / VIEWS + ablation(epochs)

    steps = max(MIN_STEPS, min(steps_full, int(total // target)))
    while steps > MIN_STEPS and target * epoch_cost(steps, target) > total:
        steps -= 1
    cfg.epochs = target if overrides.get("epochs") else max(1, min(target, int(total // epoch_cost(steps, target))))
    if cfg.epochs < MIN_EPOCHS and priced_pool:  # no pruning then: re-plan without its tokens and forwards
        return _unpriced_pool(cfg, why, n_cols, n_train, steps_full, budget, overrides, _count(cfg.epochs, "epoch"))
    if priced_pool and cfg.device == "cpu" and steps < min(PRUNE_MIN_STEPS, steps_full) and \
            overrides.get("relationship_pool") is None:  # budget-starved epochs: train instead of exploring
        return _unpriced_pool(cfg, why, n_cols, n_train, steps_full, budget, overrides,
                              f"{_count(steps, 'step')} per epoch (pruning needs at least {PRUNE_MIN_STEPS})")
    cfg.validation_rows = min(n_val, max(2 * bs, steps * bs // 2))
    why["validation_rows"] = (f"{cfg.validation_rows:,} of the {n_val:,} validation rows are scored each epoch (a fixed "
                              "set, half an epoch's training rows, at least two batches): the budget pays for them")
    if steps < steps_full:
        cfg.rows_per_epoch = steps * bs
        why["rows_per_epoch"] = (f"{cfg.rows_per_epoch:,} of the {n_train:,} training rows, a fresh seeded sample each "
                                 f"epoch ({steps} steps): a full pass {cfg.epochs} times does not fit the budget")
        seen = cfg.epochs * cfg.rows_per_epoch
        if seen < n_train:  # rows no epoch can reach are not tensorised at all (all rows are still encoded)
            cfg.max_train_rows = max(bs, seen)
            why["max_train_rows"] = (f"{cfg.max_train_rows:,}: the {cfg.epochs} epochs see at most that many rows, so a "
                                     "seeded subset of rows is trained on (all rows are still encoded)")
    why["epochs"] = (f"{cfg.epochs} epochs of {steps} steps (the target is {target} epochs, at least "
                     f"{MIN_STEPS} steps each); {priced}")


def _unpriced_pool(cfg: TrainingConfig, why: dict, n_cols: int, n_train: int, steps_full: int, budget: float,
                   overrides: dict, affords: str) -> None:
    """Plan without the candidate pool (its extra tokens and per-epoch ablations) and switch pruning
    off: with the pool priced the budget affords ``affords``."""
    _plan_cpu_epochs(cfg, why, n_cols, n_train, steps_full, budget, overrides, price_pool=False)
    if overrides.get("relationship_pool") is None:
        cfg.relationship_pool = cfg.max_pairs
        why["relationship_pool"] = (
            f"{cfg.max_pairs}: no relationship pruning: with the candidate pool's tokens and per-epoch ablations priced "
            f"the budget affords {affords}, so the floor's pairs (by mutual information) train throughout and the "
            "budget goes to training steps (measured on a 64-column table, 4 steps per epoch: linear probe 0.942 "
            "with the floor's pairs, 0.933 pruned)")


def _shrink_batch(cfg: TrainingConfig, why: dict, n_cols: int, n_train: int, budget: float, overrides: dict) -> None:
    """A wide or long-sequence table whose planned epochs fell below the target halves its batch
    (down to ``MIN_BATCH``) while that buys more epochs: the training dynamics act per epoch, and a
    smaller batch makes every step cheaper. Not when the caller set the batch or the epochs, nor
    when every row is trained each epoch (then a smaller batch only means more steps per epoch)."""
    target = _target_epochs(cfg, overrides)
    if any(overrides.get(k) for k in ("epochs", "rows_per_epoch", "max_train_rows", "every_row_each_epoch")) \
            or overrides.get("batch_size") is not None or cfg.every_row_each_epoch:
        return
    first = cfg.batch_size
    while cfg.epochs < target and cfg.batch_size // 2 >= MIN_BATCH:
        trial, trial_why = TrainingConfig(**{**asdict(cfg), "batch_size": cfg.batch_size // 2}), dict(why)
        trial.temperature = adaptive_temperature(trial.batch_size, n_cols)
        _plan_cpu_epochs(trial, trial_why, n_cols, n_train, max(1, math.ceil(n_train / trial.batch_size)), budget,
                         overrides)
        if trial.epochs <= cfg.epochs:
            break
        for f in fields(cfg):
            setattr(cfg, f.name, getattr(trial, f.name))
        why.clear()
        why.update(trial_why)
    if cfg.batch_size != first:
        why["batch_size"] += (f"; halved to {cfg.batch_size} on CPU: at batch {first} only a few epochs fit the budget, "
                              f"and a cheaper step buys more of them ({cfg.epochs} now)")
        why["temperature"] = _temperature_reason(cfg.temperature)


def _plan_pool(cfg: TrainingConfig, why: dict, n_cols: int, overrides: dict) -> None:
    """How many candidate pairs causal pruning explores (``training.relations``)."""
    if overrides.get("relationship_pool") is not None or "relationship_pool" in why:  # the caller's, or the plan's
        return
    possible = n_cols * (n_cols - 1) // 2
    if cfg.epochs < MIN_EPOCHS or possible <= cfg.max_pairs:
        cfg.relationship_pool = cfg.max_pairs
        why["relationship_pool"] = (f"{cfg.max_pairs}: no relationship pruning ("
                                    + (f"{cfg.epochs} epochs leave no room after exploration; it needs {MIN_EPOCHS}"
                                       if cfg.epochs < MIN_EPOCHS else "every pair is within the floor") + ")")
        return
    cfg.relationship_pool = pool_size(possible, cfg.max_pairs)
    why["relationship_pool"] = (f"{cfg.relationship_pool} candidate pairs (of {possible}) explored, then pruned by causal "
                                f"lift to {cfg.max_pairs}: two thirds ranked by mutual information, a third drawn at random "
                                "from the rest (a pair can matter without its columns depending on each other)")


def _count(n: int, noun: str) -> str:
    return f"only {n} {noun}{'' if n == 1 else 's'}"


def _temperature_reason(t: float) -> str:
    return (f"{t:.3f} = 0.2 / (batch factor × column factor), clamped to [0.01, 0.2] "
            "(more columns or a larger batch: sharper contrast)")


def adaptive_temperature(batch_size: int, n_cols: int) -> float:
    batch_factor = max(1.0, math.log2(batch_size) / 7.0)  # 1 at batch 128
    column_factor = max(1.0, math.sqrt(n_cols / 10.0))  # more columns → lower temperature (spec §4.4)
    return float(min(0.2, max(0.01, 0.2 / (batch_factor * column_factor))))


def dropout_at(progress: float, start: float = 0.5, end: float = 0.25) -> float:
    """Spec §10: hold ``start`` for the first 33%, ramp linearly to ``end`` by 66%, then hold."""
    if progress < 1 / 3:
        return start
    if progress < 2 / 3:
        return start + (end - start) * (progress - 1 / 3) * 3
    return end


def curriculum_weights(progress: float) -> dict[str, float]:
    """Spec §9 curriculum table: (spread, joint, marginal) weights by training progress."""
    if progress < 0.30:
        return {"spread": 1.0, "joint": 0.8, "marginal": 0.005}
    if progress < 0.45:
        return {"spread": 0.5, "joint": 1.0, "marginal": 0.01}
    if progress < 0.85:
        return {"spread": 0.3, "joint": 1.0, "marginal": 0.03}
    return {"spread": 0.2, "joint": 1.0, "marginal": 0.02}
