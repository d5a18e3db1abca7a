"""Direct unit tests of the training-dynamics functions (spec §4.4, §8–§13): failure detection, the
intervention ladder, curriculum, dropout, temperature, complementary masks, validation rotation,
auto-configuration, collapse metrics, the OneCycle shape and adaptive gradient clipping.

No space is fitted here: every test drives one function with tiny tensors or hand-made histories.
Where today's code deviates from the spec the test asserts the spec and is a strict xfail naming
the issue, so the deviation is visible and the test flips to XPASS (an error) once it is fixed.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from featrix_model.training.config import (
    MIN_BATCH,
    MIN_STEPS,
    PRUNE_MIN_STEPS,
    PER_COLUMN_S,
    TARGET_EPOCHS,
    TARGET_UPDATES,
    TrainingConfig,
    _mean_rel_tokens,
    adaptive_temperature,
    auto_config,
    curriculum_weights,
    dropout_at,
    step_seconds,
)
from featrix_model.training.relations import ABLATION_ROWS, ABLATIONS, MIN_EPOCHS
from featrix_model.training.losses import complementary_masks, complementary_views
from featrix_model.training.monitor import InterventionLadder, collapse_metrics, detect_failures
from featrix_model.training.trainer import (
    Trainer,
    clip_gradients,
    effective_temperature,
    gradient_warning,
    lr_factor,
)

torch.set_num_threads(1)


# ---------------------------------------------------------------- detect_failures (spec §4.2, §11)

def _history(train, val=None, grad=1.0):
    """Per-epoch entries (epochs 1..n) as Trainer.fit records them."""
    val = [None] * len(train) if val is None else val
    return [{"epoch": i + 1, "train_loss": float(t), "validation_loss": None if v is None else float(v),
             "gradients": {"unclipped_norm": grad}} for i, (t, v) in enumerate(zip(train, val))]


def _declining(n, start=2.0, rate=0.02):
    return [start * (1 - rate) ** i for i in range(n)]


def test_healthy_history_has_no_failures():
    train = _declining(25)
    assert detect_failures(_history(train, [t * 1.03 for t in train])) == []
    assert detect_failures([]) == []


def test_dead_network_below_1e_minus_8_gradient():
    train = _declining(8)
    assert "DEAD_NETWORK" in detect_failures(_history(train, train, grad=1e-9))
    assert "DEAD_NETWORK" not in detect_failures(_history(train, train, grad=1e-6))


def test_very_slow_learning_needs_under_1pct_in_5_epochs_and_gradient_under_0_01():
    slow = [1.0] * 5 + [1.0 * (1 - 0.001 * k) for k in range(1, 6)]  # 0.5 % better over the last 5 epochs
    assert "VERY_SLOW_LEARNING" in detect_failures(_history(slow, grad=0.005))
    assert "VERY_SLOW_LEARNING" not in detect_failures(_history(slow, grad=0.02))  # gradients not low
    faster = [1.0] * 5 + [1.0 * (1 - 0.004 * k) for k in range(1, 6)]  # 2 % better
    assert "VERY_SLOW_LEARNING" not in detect_failures(_history(faster, grad=0.005))


def _plateau_val(n, last5_improvement):
    """Validation loss that improves 5 %/epoch, then changes by ``last5_improvement`` over its last 5 epochs."""
    head = [2.0 * 0.95 ** i for i in range(n - 5)]
    return head + [head[-1] * (1 - last5_improvement * k / 5) for k in range(1, 6)]


def test_no_learning_under_0_1pct_val_improvement_in_5_epochs_after_epoch_15():
    # spec §11 table: "<0.1% val loss improvement over 5 epochs after epoch 15" (§10 says 0.5 %; the
    # detection table's 0.1 % is what is tested)
    val = _plateau_val(16, 0.0005)
    assert "NO_LEARNING" in detect_failures(_history(val, val))
    worse = _plateau_val(16, -0.02)  # flat or *increasing* validation loss is no learning either
    assert "NO_LEARNING" in detect_failures(_history(worse, worse))
    improving = _plateau_val(16, 0.002)
    assert "NO_LEARNING" not in detect_failures(_history(improving, improving))
    early = _plateau_val(15, 0.0005)  # the same plateau at epoch 15 is not yet "after epoch 15"
    assert "NO_LEARNING" not in detect_failures(_history(early, early))
    assert "NO_LEARNING" not in detect_failures(_history(val))  # no validation loss: nothing to judge


def _overfit(n, val_up, train_down):
    train = [1.0] * (n - 5) + [1.0 * (1 - train_down * k / 5) for k in range(1, 6)]
    val = [1.0] * (n - 5) + [1.0 * (1 + val_up * k / 5) for k in range(1, 6)]
    return _history(train, val)


def test_severe_overfitting_val_up_5pct_while_train_down_2pct_after_epoch_10():
    assert "SEVERE_OVERFITTING" in detect_failures(_overfit(11, 0.06, 0.03))
    assert "SEVERE_OVERFITTING" not in detect_failures(_overfit(11, 0.04, 0.03))  # val rose too little
    assert "SEVERE_OVERFITTING" not in detect_failures(_overfit(11, 0.06, 0.01))  # train fell too little
    assert "SEVERE_OVERFITTING" not in detect_failures(_overfit(10, 0.06, 0.03))  # not after epoch 10 yet


def test_moderate_overfitting_gap_over_10pct_with_val_worsening():
    train = _declining(8, 1.2)[:-1] + [1.0]
    h = _history(train, [None] * 6 + [1.12, 1.15])  # gap 13 % of val (15 % of train), val worse
    assert "MODERATE_OVERFITTING" in detect_failures(h)
    small_gap = _history(train, [None] * 6 + [1.05, 1.08])  # gap 7 % of val (8 % of train)
    assert "MODERATE_OVERFITTING" not in detect_failures(small_gap)
    improving = _history(train, [None] * 6 + [1.20, 1.15])  # same gap, but validation improves
    assert "MODERATE_OVERFITTING" not in detect_failures(improving)


def test_unstable_training_coefficient_of_variation_over_10pct():
    wild = [1.0] * 5 + [1.0, 1.25, 0.95, 1.2, 0.9]  # CV of the last 5 epochs 0.13 (0.15 with ddof=1)
    calm = [1.0] * 5 + [1.0, 1.08, 0.97, 1.06, 0.95]  # CV 0.05 (0.056)
    assert "UNSTABLE_TRAINING" in detect_failures(_history(wild))
    assert "UNSTABLE_TRAINING" not in detect_failures(_history(calm))


# ---------------------------------------------------------------- InterventionLadder (spec §4.2, §11, §12)

def _drive(ladder, no_learning_epochs, last_epoch):
    """Run the ladder as Trainer.fit does (step at the end of each epoch). Returns, per epoch, the LR and
    temperature multipliers that epoch trained with (set by the previous epoch's step) and its notes."""
    in_effect, notes = {}, {}
    for epoch in range(1, last_epoch + 1):
        in_effect[epoch] = (ladder.lr_multiplier, ladder.temperature_multiplier)
        notes[epoch] = ladder.step(epoch, ["NO_LEARNING"] if epoch in no_learning_epochs else [])
    return in_effect, notes


def test_ladder_escalation_order_with_10_epoch_waits():
    ladder = InterventionLadder()
    in_effect, notes = _drive(ladder, set(range(16, 80)), 80)  # stuck from epoch 16 on
    stages = [(a["epoch"], a["action_type"]) for a in ladder.actions]
    assert stages[:5] == [(16, "LR_BOOST"), (26, "TEMP_BOOST"), (36, "LR_BOOST"), (46, "TEMP_BOOST"), (56, "ACCEPT")]
    assert all(a["trigger"] == "NO_LEARNING" for a in ladder.actions)
    assert "LR_BOOST_3X" in notes[16] and "TEMP_BOOST_2X" in notes[26] and "LR_BOOST_2X" in notes[36]
    assert "TEMP_BOOST_2X" in notes[46] and "ACCEPT_CURRENT_STATE" in notes[56]
    for e in list(range(17, 26)) + list(range(27, 36)):  # waiting: no new stage inside 10 epochs
        assert not {"LR_BOOST_3X", "TEMP_BOOST_2X", "LR_BOOST_2X", "ACCEPT_CURRENT_STATE"} & set(notes[e])
    assert in_effect[17][0] == 3.0 and in_effect[16] == (1.0, 1.0)  # the boost starts the epoch after detection
    assert in_effect[27][1] == 2.0 and in_effect[47][1] == 4.0  # temperature 2×, then 2× again
    assert in_effect[37][0] >= 2.0 and ladder.actions[2]["details"].get("cumulative") is True


def test_ladder_waits_only_while_inside_10_epochs_of_the_last_stage():
    ladder = InterventionLadder()
    _drive(ladder, {16, 25, 40, 49, 50}, 55)
    assert [(a["epoch"], a["action_type"]) for a in ladder.actions] == [(16, "LR_BOOST"), (40, "TEMP_BOOST"),
                                                                        (50, "LR_BOOST")]
    assert ladder.lr_multiplier == 2.0  # the 3× boost had ended (epoch 37), so stage 3 doubles the schedule


def test_ladder_blocks_early_stopping_for_10_epochs():
    ladder = InterventionLadder()
    assert not ladder.early_stop_blocked(16)
    ladder.step(16, ["NO_LEARNING"])
    assert all(ladder.early_stop_blocked(e) for e in range(16, 27))
    assert not ladder.early_stop_blocked(27)
    ladder.step(20, ["NO_LEARNING"])  # still stuck while waiting: the block is extended
    assert ladder.early_stop_blocked(30) and not ladder.early_stop_blocked(31)
    assert not InterventionLadder().early_stop_blocked(1)


def test_ladder_ignores_other_failures():
    ladder = InterventionLadder()
    for e in range(16, 40):
        assert ladder.step(e, ["UNSTABLE_TRAINING", "MODERATE_OVERFITTING", "EMBEDDING_COLLAPSE"]) == []
    assert ladder.actions == [] and ladder.lr_multiplier == 1.0 and not ladder.early_stop_blocked(20)


def test_lr_boost_3x_is_active_after_detection_and_ends_once():
    ladder = InterventionLadder()
    in_effect, notes = _drive(ladder, {20}, 60)
    assert all(in_effect[e][0] == 3.0 for e in range(21, 41))
    assert all(in_effect[e][0] == 1.0 for e in range(42, 61)) and in_effect[20][0] == 1.0
    assert all("LR_BOOST_ACTIVE" in notes[e] for e in range(21, 40))
    assert [e for e in notes if "LR_BOOST_END" in notes[e]] in ([40], [41])
    assert ladder.actions[0]["details"] == {"lr_multiplier": 3.0, "boost_epochs": 20}


def test_lr_boost_3x_lasts_exactly_20_epochs():
    # spec §4.2: "Epoch 20: NO_LEARNING detected ... Epochs 21-40: LR boost active ... Epoch 41: LR boost ends,
    # return to schedule"
    in_effect, _ = _drive(InterventionLadder(), {20}, 60)
    assert [e for e in in_effect if in_effect[e][0] == 3.0] == list(range(21, 41))


def test_lr_boost_3x_ends_after_20_epochs_even_when_stage_2_followed():
    in_effect, notes = _drive(InterventionLadder(), {16, 26}, 60)  # stage 1 at 16, stage 2 at 26, then unstuck
    assert in_effect[27] == (3.0, 2.0)
    assert all(in_effect[e][0] == 1.0 for e in range(38, 61))
    assert any("LR_BOOST_END" in notes[e] for e in notes)


# ---------------------------------------------------------------- temperature (spec §4.4, §9, §11)

def test_adaptive_temperature_formula_and_clamps():
    # base 0.2 / (batch factor × column factor); batch factor log2(batch)/7 (1 at 128), column factor
    # sqrt(n_cols/10), each at least 1
    assert adaptive_temperature(128, 10) == pytest.approx(0.2)
    assert adaptive_temperature(1024, 40) == pytest.approx(0.2 / ((10 / 7) * 2.0))
    assert adaptive_temperature(256, 90) == pytest.approx(0.2 / ((8 / 7) * 3.0))
    assert adaptive_temperature(32, 2) == pytest.approx(0.2)  # small batch / few columns: upper clamp
    assert adaptive_temperature(32, 90) == pytest.approx(0.2 / 3.0)  # batch factor at least 1
    assert adaptive_temperature(2048, 100_000) == pytest.approx(0.01)  # lower clamp
    cols = [adaptive_temperature(256, c) for c in (5, 10, 20, 50, 200)]
    assert all(a >= b for a, b in zip(cols, cols[1:])) and cols[0] > cols[-1]  # more columns → lower
    batches = [adaptive_temperature(b, 20) for b in (64, 128, 512, 2048)]
    assert all(a >= b for a, b in zip(batches, batches[1:])) and batches[0] > batches[-1]
    grid = [adaptive_temperature(b, c) for b in (2, 32, 4096, 10**6) for c in (1, 3, 10**3, 10**6)]
    assert all(0.01 <= t <= 0.2 for t in grid)


def test_effective_temperature_applies_the_boost_below_the_ceiling():
    for base in (0.01, 0.05, 0.0875, 0.2):
        assert effective_temperature(base, 1.0) == pytest.approx(base)
    assert effective_temperature(0.05, 2.0) == pytest.approx(0.1)
    assert effective_temperature(0.05, 4.0) == pytest.approx(0.2)
    assert effective_temperature(0.004, 1.0) == pytest.approx(0.01)  # the [0.01, 0.2] floor (spec §4.4)


def test_temperature_boost_doubles_the_temperature_at_a_0_2_base():
    base = auto_config(2000, 8).temperature
    assert base == pytest.approx(0.2)
    ladder = InterventionLadder()
    _drive(ladder, {16, 26}, 27)
    assert ladder.temperature_multiplier == 2.0
    assert effective_temperature(base, ladder.temperature_multiplier) == pytest.approx(2 * base)


# ---------------------------------------------------------------- curriculum and dropout (spec §9, §10)

@pytest.mark.parametrize("progress,expected", [
    (0.0, (1.0, 0.8, 0.005)), (0.2999, (1.0, 0.8, 0.005)),
    (0.30, (0.5, 1.0, 0.01)), (0.4499, (0.5, 1.0, 0.01)),
    (0.45, (0.3, 1.0, 0.03)), (0.8499, (0.3, 1.0, 0.03)),
    (0.85, (0.2, 1.0, 0.02)), (1.0, (0.2, 1.0, 0.02)),
])
def test_curriculum_weights_follow_the_spec_table(progress, expected):
    w = curriculum_weights(progress)
    assert (w["spread"], w["joint"], w["marginal"]) == pytest.approx(expected)


def test_dropout_holds_ramps_and_holds():
    for p in (0.0, 0.2, 0.3333):
        assert dropout_at(p) == pytest.approx(0.5)
    assert dropout_at(0.5) == pytest.approx(0.375)  # halfway through the 33–66 % ramp
    assert dropout_at(5 / 12) == pytest.approx(0.4375)
    for p in (2 / 3, 0.7, 0.99, 1.0):
        assert dropout_at(p) == pytest.approx(0.25)
    xs = np.linspace(0, 1, 101)
    ys = [dropout_at(x) for x in xs]
    assert all(a >= b - 1e-12 for a, b in zip(ys, ys[1:]))
    assert dropout_at(0.1, 0.6, 0.2) == pytest.approx(0.6) and dropout_at(0.9, 0.6, 0.2) == pytest.approx(0.2)
    cfg = TrainingConfig()
    assert (cfg.dropout_start, cfg.dropout_end) == (0.5, 0.25)


# ---------------------------------------------------------------- complementary masks (spec §8)

def _views(present, seed=0):
    return complementary_views(present, torch.Generator().manual_seed(seed))  # as Trainer._losses builds them


@pytest.mark.parametrize("n_cols", [5, 10, 20, 37])
def test_masks_are_complementary_and_mask_40_to_60_percent(n_cols):
    present = torch.ones(400, n_cols, dtype=torch.bool)
    vis1, vis2 = _views(present)
    assert vis1.dtype == vis2.dtype == torch.bool and vis1.shape == vis2.shape == present.shape
    assert torch.equal(vis1, complementary_masks(present, torch.Generator().manual_seed(0)))
    assert torch.equal(vis1 ^ vis2, torch.ones_like(vis1))  # what one view masks, the other reveals
    for vis in (vis1, vis2):
        frac = (~vis).float().mean(dim=1)
        assert frac.min() >= 0.4 - 1e-9 and frac.max() <= 0.6 + 1e-9


def test_sparse_rows_mask_less():
    # spec §8: "If data is sparse (many NULLs), mask intensity reduces" — rows with 0, 5, 10 and 15 of 20
    # values null, 500 rows each
    g = torch.Generator().manual_seed(1)
    n_null = torch.arange(2000) // 500 * 5
    present = torch.rand(2000, 20, generator=g).argsort(dim=1) >= n_null.unsqueeze(1)
    masked = (~complementary_masks(present, torch.Generator().manual_seed(0))).float().mean(dim=1)
    means = [float(masked[n_null == k].mean()) for k in (0, 5, 10, 15)]
    assert means[0] == pytest.approx(0.5, abs=0.02)
    assert all(a > b + 0.03 for a, b in zip(means, means[1:])), means


@pytest.mark.parametrize("n_cols", [2, 3, 4])
def test_every_view_keeps_a_visible_and_a_masked_column(n_cols):
    present = torch.ones(300, n_cols, dtype=torch.bool)
    present[100:200] = False  # rows with every value null mask the least (ratio 20–30 %)
    present[200:, 0] = False
    vis1, vis2 = _views(present, seed=3)
    for vis in (vis1, vis2):
        assert vis.any(dim=1).all() and (~vis).any(dim=1).all()


def test_masks_are_deterministic_under_a_seeded_generator():
    present = torch.rand(64, 12, generator=torch.Generator().manual_seed(5)) > 0.2
    a, _ = _views(present, seed=11)
    b, _ = _views(present, seed=11)
    c, _ = _views(present, seed=12)
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---------------------------------------------------------------- validation rotation (spec §4.1, §13)

def _trainer_for_rotation(seed=0):
    t = Trainer.__new__(Trainer)  # _rotate only reads the config and logs: no network needed
    t.cfg, t.log = TrainingConfig(seed=seed), (lambda msg: None)
    return t


def test_rotation_swaps_10_percent_and_keeps_the_split_disjoint():
    cfg = TrainingConfig()
    assert cfg.rotation_every == 25 and cfg.rotation_fraction == 0.1
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(42))
    val, train = perm[:100], perm[100:]
    val0, train0 = val.clone(), train.clone()
    new_train, new_val = _trainer_for_rotation()._rotate(train, val, 25)
    assert torch.equal(val, val0) and torch.equal(train, train0)  # the inputs are not modified
    assert len(new_train) == 900 and len(new_val) == 100
    s_train, s_val = set(new_train.tolist()), set(new_val.tolist())
    assert not s_train & s_val and s_train | s_val == set(range(1000))
    assert len(s_val - set(val0.tolist())) == 10 and len(s_train - set(train0.tolist())) == 10


def test_rotation_is_seeded_by_epoch():
    perm = torch.randperm(500, generator=torch.Generator().manual_seed(0))
    val, train = perm[:50], perm[50:]
    t = _trainer_for_rotation()
    a, b, c = t._rotate(train, val, 25), t._rotate(train, val, 25), t._rotate(train, val, 50)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert set(a[1].tolist()) != set(c[1].tolist())
    d = _trainer_for_rotation(seed=1)._rotate(train, val, 25)
    assert set(a[1].tolist()) != set(d[1].tolist())


# ---------------------------------------------------------------- auto_config (spec §4.4, §10, §14)

@pytest.mark.parametrize("n_rows,gpu,cpu", [
    (500, 32, 32), (4500, 32, 32), (6400, 64, 64), (10_000, 128, 128), (30_000, 256, 256),
    (60_000, 512, 256), (300_000, 2048, 256), (5_000_000, 2048, 256),
])
def test_batch_size_rule_and_cpu_cap(n_rows, gpu, cpu):
    # min(2048, max(32, n_rows/100)) rounded to a power of 2; at most 256 on a CPU
    g = auto_config(n_rows, 10, device="cuda")
    c = auto_config(n_rows, 10)
    assert (g.batch_size, c.batch_size) == (gpu, cpu)
    assert ("capped at 256 on CPU" in c.reasons["batch_size"]) == (gpu > 256)


@pytest.mark.parametrize("n_rows,lr,wd", [
    (999, 5e-5, 0.1), (1000, 1e-4, 0.01), (4999, 1e-4, 0.01), (5000, 2e-4, 1e-3), (20_000, 2e-4, 1e-3),
    (20_001, 3e-4, 1e-4), (1_000_000, 3e-4, 1e-4),
])
def test_lr_and_weight_decay_by_data_size(n_rows, lr, wd):
    # spec §4.4: <1K 5e-5 / 0.1, 5K–20K 2e-4, >20K 3e-4 / 1e-4, 1K–5K weight decay 0.01 (1K–5K lr and
    # 5K–20K weight decay are interpolated)
    cfg = auto_config(n_rows, 10, device="cuda")
    assert cfg.lr == pytest.approx(lr) and cfg.weight_decay == pytest.approx(wd)
    assert cfg.max_lr_multiplier == 3.0 and cfg.clip_ratio == 2.0


def test_gpu_epochs_target_36000_updates():
    for n_rows in (2_000, 10_000, 300_000):
        cfg = auto_config(n_rows, 10, device="cuda")
        steps = math.ceil(n_rows * (1 - cfg.val_fraction) / cfg.batch_size)
        assert cfg.epochs == math.ceil(TARGET_UPDATES / steps)
        assert cfg.max_train_rows == 0 and cfg.time_budget_s == 0.0


def test_cpu_epochs_come_from_the_fixed_cost_model_not_a_clock(monkeypatch):
    def no_clock(*a, **k):
        raise AssertionError("auto_config read a clock")

    for name in ("time", "monotonic", "perf_counter", "process_time", "time_ns", "monotonic_ns", "perf_counter_ns"):
        monkeypatch.setattr(time, name, no_clock)
    a = auto_config(10_000, 10, time_budget_s=150.0)
    b = auto_config(10_000, 10, time_budget_s=150.0)
    monkeypatch.undo()
    assert a.to_dict() == b.to_dict()
    # rows-aware (training.config docstring): TARGET_EPOCHS epochs first, rows per epoch from the budget
    assert a.epochs == TARGET_EPOCHS and 0 < a.rows_per_epoch < 9000 and a.rows_per_epoch % a.batch_size == 0
    steps = a.rows_per_epoch // a.batch_size
    per_step = step_seconds(a, 10, _mean_rel_tokens(a, a.relationship_pool))
    validation = a.validation_rows / a.batch_size / 3  # forwards: a third of a step per batch
    ablation = (ABLATIONS + 1) * 2 * min(1000, ABLATION_ROWS) / a.batch_size / 9  # causal scoring's forwards
    assert TARGET_EPOCHS * (steps + validation + ablation) * per_step <= 150.0  # the plan fits the budget...
    assert TARGET_EPOCHS * (steps + 1 + validation + ablation) * per_step > 150.0  # ...and one more step would not
    longer = auto_config(10_000, 10, time_budget_s=300.0)
    assert longer.epochs == TARGET_EPOCHS and longer.rows_per_epoch > a.rows_per_epoch  # more budget: more rows
    assert a.patience == TARGET_EPOCHS // 4 and "patience" in a.reasons


def test_small_tables_train_the_target_epochs_of_full_passes_and_stop():
    cfg = auto_config(344, 7)  # penguins: the budget would buy thousands of passes; they would only overfit
    assert cfg.epochs == TARGET_EPOCHS and cfg.rows_per_epoch == 0 and cfg.max_train_rows == 0
    assert "full passes" in cfg.reasons["epochs"]
    assert cfg.relationship_pool > cfg.max_pairs  # enough epochs for causal pruning to explore a pool


def test_width_grows_with_the_columns_unless_the_budget_cannot_pay_for_it():
    assert auto_config(10_000, 20).d_model == 64 and auto_config(1_797, 64).d_model == 128  # 64 columns: wider
    assert auto_config(1_797, 64).epochs >= MIN_EPOCHS
    short = auto_config(100_000, 100)  # at 128 wide, fewer than MIN_EPOCHS epochs fit: stays 64, says why
    assert short.d_model == 64 and "fewer than" in short.reasons["d_model"]
    assert auto_config(100_000, 100, time_budget_s=600).d_model == 128  # a larger budget pays for the width
    assert auto_config(100_000, 100, d_model=256).d_model == 256  # the caller's width is kept
    gpu = [auto_config(r, c, device="cuda").d_model for r, c in ((5_000, 10), (5_000, 60), (200_000, 10),
                                                                 (2_000_000, 250))]
    assert gpu == [128, 256, 256, 512]


def test_the_pool_is_explored_only_where_the_plan_paid_for_it():
    # a 64-column table: with its 96-pair pool priced fewer than MIN_EPOCHS epochs fit, so the plan is
    # priced without it, and then the pool must stay off (it once came back on, at ~3x the budget)
    wide = auto_config(1_797, 64)
    assert wide.relationship_pool == wide.max_pairs and "no relationship pruning" in wide.reasons["relationship_pool"]
    starved = auto_config(40_000, 11)  # 5 steps per epoch with the pool priced: the budget goes to training
    assert starved.rows_per_epoch // starved.batch_size < PRUNE_MIN_STEPS <= TARGET_EPOCHS
    assert starved.relationship_pool == starved.max_pairs and "steps per epoch" in starved.reasons["relationship_pool"]
    roomy = auto_config(10_000, 11)  # 9 steps per epoch: pruning runs
    assert roomy.rows_per_epoch // roomy.batch_size >= PRUNE_MIN_STEPS and roomy.relationship_pool > roomy.max_pairs
    caller = auto_config(40_000, 11, relationship_pool=15)  # the caller's pool is kept and priced
    assert caller.relationship_pool == 15 and caller.rows_per_epoch < starved.rows_per_epoch


def test_the_relational_parent_level_trains_the_fewest_epochs_the_dynamics_need():
    cfg = auto_config(1_092, 12, every_row_each_epoch=True, warm_start=True)  # rainy day's parents
    assert cfg.epochs == MIN_EPOCHS and "warm start" in cfg.reasons["epochs"]
    assert auto_config(1_092, 12).epochs == TARGET_EPOCHS  # the same table as a table space: the full target


def test_caller_epochs_get_rows_from_the_budget():
    cfg = auto_config(336_776, 19, epochs=10)
    assert cfg.epochs == 10 and cfg.reasons["epochs"] == "set by the caller"
    assert cfg.rows_per_epoch > auto_config(336_776, 19).rows_per_epoch  # fewer epochs, more rows each


def test_step_seconds_is_a_pure_cost_model():
    cfg = TrainingConfig(d_model=64, n_layers=2, batch_size=128)
    t = step_seconds(cfg, 10, 5)
    assert t == step_seconds(cfg, 10, 5) and t > 0
    assert step_seconds(TrainingConfig(d_model=64, n_layers=2, batch_size=256), 10, 5) > t
    assert step_seconds(cfg, 20, 5) > t
    tiny = TrainingConfig(d_model=1, n_layers=1, batch_size=1)  # transformer work ~0: the per-column cost
    assert step_seconds(tiny, 20, 0) - step_seconds(tiny, 10, 0) == pytest.approx(10 * PER_COLUMN_S, rel=1e-3)
    assert step_seconds(cfg, 10, 50) > t
    assert step_seconds(TrainingConfig(d_model=128, n_layers=2, batch_size=128), 10, 5) > t


def test_epochs_fall_only_when_min_steps_do_not_fit_the_target():
    cfg = auto_config(2_000_000, 40, time_budget_s=5.0)
    assert cfg.rows_per_epoch == MIN_STEPS * cfg.batch_size and cfg.epochs < TARGET_EPOCHS
    assert cfg.max_train_rows == max(cfg.batch_size, cfg.epochs * cfg.rows_per_epoch)
    assert "max_train_rows" in cfg.reasons and "rows_per_epoch" in cfg.reasons
    roomy = auto_config(500, 10, time_budget_s=150.0)
    assert roomy.max_train_rows == 0 and "max_train_rows" not in roomy.reasons and roomy.rows_per_epoch == 0


def test_overrides_are_recorded_as_set_by_the_caller():
    cfg = auto_config(5000, 10, lr=1e-3, d_model=32, seed=7, weight_decay=None)  # None: not set
    assert (cfg.lr, cfg.d_model, cfg.seed) == (1e-3, 32, 7)
    assert cfg.reasons["lr"] == cfg.reasons["d_model"] == cfg.reasons["seed"] == "set by the caller"
    assert cfg.weight_decay == pytest.approx(1e-3) and cfg.reasons["weight_decay"] != "set by the caller"
    auto = auto_config(5000, 10)
    assert all(v != "set by the caller" for v in auto.reasons.values())
    assert TrainingConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_settings_raise():
    with pytest.raises(TypeError, match="learning_rate"):
        auto_config(5000, 10, learning_rate=1e-3)


def test_max_epochs_caps_the_epochs():
    free = auto_config(5000, 10, device="cuda")
    capped = auto_config(5000, 10, device="cuda", max_epochs=7)
    assert free.epochs > 7 and capped.epochs == 7 and "capped by max_epochs" in capped.reasons["epochs"]
    assert auto_config(5000, 10, device="cuda", max_epochs=10**6).epochs == free.epochs


def test_max_epochs_caps_when_epochs_is_passed_as_none():
    assert auto_config(5000, 10, device="cuda", epochs=None, max_epochs=7).epochs == 7


def test_epochs_follow_an_overridden_batch_size():
    cfg = auto_config(100_000, 10, device="cuda", batch_size=256)
    steps = math.ceil(100_000 * 0.9 / 256)
    assert cfg.epochs == math.ceil(TARGET_UPDATES / steps)  # spec §4.4: 36,000 updates


def test_temperature_follows_an_overridden_batch_size():
    cfg = auto_config(100_000, 10, device="cuda", batch_size=256)
    assert cfg.temperature == pytest.approx(adaptive_temperature(256, 10))  # spec §4.4: adaptive to batch size


def test_auto_config_temperature_is_the_adaptive_one():
    for n_rows, n_cols in ((500, 4), (50_000, 30), (300_000, 120)):
        cfg = auto_config(n_rows, n_cols, device="cuda")
        assert cfg.temperature == pytest.approx(adaptive_temperature(cfg.batch_size, n_cols))


# ---------------------------------------------------------------- collapse metrics (spec §11)

def test_collapse_metrics_healthy_and_total_collapse():
    healthy = collapse_metrics(torch.randn(200, 16, generator=torch.Generator().manual_seed(0)))
    assert not healthy["collapsed"]
    assert healthy["embedding_std"] > 0.5 and healthy["embedding_range"] > 1 and healthy["avg_pairwise_distance"] > 1
    dead = collapse_metrics(torch.ones(200, 16) * 0.3)
    assert dead["collapsed"] and dead["embedding_std"] == dead["embedding_range"] == 0.0


def test_collapse_on_std_below_0_01_alone():
    m = collapse_metrics(0.2 * torch.eye(512))  # each dimension is one 0.2 among zeros: std 0.0088
    assert m["embedding_std"] < 0.01 and m["embedding_range"] > 0.1 and m["avg_pairwise_distance"] > 0.1
    assert m["collapsed"]
    assert not collapse_metrics(0.25 * torch.eye(512))["collapsed"]  # std 0.011


def test_collapse_on_range_below_0_1_alone():
    signs = torch.randint(0, 2, (200, 64), generator=torch.Generator().manual_seed(0)).float() * 2 - 1
    m = collapse_metrics(0.04 * signs)  # std 0.04, range 0.08, distance ~0.45
    assert m["embedding_std"] > 0.01 and m["embedding_range"] < 0.1 and m["avg_pairwise_distance"] > 0.1
    assert m["collapsed"]
    assert not collapse_metrics(0.06 * signs)["collapsed"]  # range 0.12


def test_collapse_on_pairwise_distance_below_0_1_alone():
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    m = collapse_metrics(0.045 * x)  # std 0.045, range ~0.3, mean distance ~0.08
    assert m["embedding_std"] > 0.01 and m["embedding_range"] > 0.1 and m["avg_pairwise_distance"] < 0.1
    assert m["collapsed"]
    assert not collapse_metrics(0.07 * x)["collapsed"]  # distance ~0.12


# ---------------------------------------------------------------- OneCycle (spec §10)

def test_lr_factor_one_cycle_shape():
    total = 1000
    f = [lr_factor(s, total) for s in range(total + 1)]
    assert f[0] == pytest.approx(1 / 25)
    warm = f[:150]
    assert all(a < b for a, b in zip(warm, warm[1:])) and warm[-1] < 1.0
    assert all(v == pytest.approx(1.0) for v in f[150:200])  # peak (3× base LR) held for 5 %
    assert f[205] < 1.0  # ... then the decay starts
    cool = f[200:]
    assert all(a >= b for a, b in zip(cool, cool[1:]))
    assert f[1000] == pytest.approx(1e-4)  # cosine down to 1/10,000 of the max
    q = lambda frac: 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * frac))  # noqa: E731
    for step, frac in ((400, 0.25), (600, 0.5), (800, 0.75)):
        assert f[step] == pytest.approx(q(frac))
    assert lr_factor(0, 0) == pytest.approx(1 / 25)  # no steps: no division by zero


# ---------------------------------------------------------------- adaptive gradient clipping (spec §4.4, §10)

def _param_with_grad(grad):
    p = torch.nn.Parameter(torch.zeros(len(grad)))
    p.grad = torch.tensor(grad)
    return p


def test_clip_threshold_is_loss_times_clip_ratio():
    p = _param_with_grad([3.0, 4.0])  # norm 5
    unclipped, threshold = clip_gradients([p], 1.0, 2.0)
    assert unclipped == pytest.approx(5.0) and threshold == pytest.approx(2.0)
    assert float(p.grad.norm()) == pytest.approx(2.0, rel=1e-4)  # clipped to loss × 2
    q = _param_with_grad([3.0, 4.0])
    assert clip_gradients([q], 10.0, 2.0) == (pytest.approx(5.0), pytest.approx(20.0))
    assert torch.allclose(q.grad, torch.tensor([3.0, 4.0]))  # a large loss tolerates large gradients
    r = _param_with_grad([3.0, 4.0])
    assert clip_gradients([r], 1.0, 4.0)[1] == pytest.approx(4.0)
    assert float(r.grad.norm()) == pytest.approx(4.0, rel=1e-4)


def test_gradient_warning_above_10x_loss():
    assert gradient_warning(11.0, 1.0) and not gradient_warning(9.0, 1.0)
    assert gradient_warning(0.011, 0.001) and not gradient_warning(100.0, 20.0)


def test_a_slow_clock_warns_but_never_cuts_the_planned_epochs(monkeypatch):
    """Nothing that decides a result may read the clock: a machine 1,000 s slower per step trains the same
    epochs (and the same bytes) and only gets a warning."""
    import pandas as pd

    from featrix_model import EmbeddingSpace
    from featrix_model.training import trainer as trainer_module

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=200), "b": rng.choice(["x", "y"], 200)})
    quiet = EmbeddingSpace.fit(df, time_budget_s=1, seed=0, progress=False)
    ticks = iter(range(0, 10**9, 1000))
    monkeypatch.setattr(trainer_module.time, "monotonic", lambda: float(next(ticks)))
    busy = EmbeddingSpace.fit(df, time_budget_s=1, seed=0, progress=False)
    assert len(busy.timeline) == len(quiet.timeline) == busy.config.epochs
    assert any("TIME_OVER_BUDGET" in e["corrective_actions"] for e in busy.timeline)
    assert busy.encode(df).tobytes() == quiet.encode(df).tobytes()


def test_a_wide_long_table_shrinks_its_batch_before_its_epochs_fall():
    # 100K rows x 100 columns: at batch 256 the budget buys 9 epochs of 4 steps (too few for the ladder,
    # early stopping or pruning); halving the batch makes a step cheaper and buys more epochs
    cfg = auto_config(100_000, 100)
    assert MIN_BATCH <= cfg.batch_size < 256 and "halved" in cfg.reasons["batch_size"]
    assert cfg.epochs >= 40 and cfg.epochs * (cfg.rows_per_epoch // cfg.batch_size) > 9 * 4
    assert cfg.temperature == adaptive_temperature(cfg.batch_size, 100)
    # the caller's batch or epochs are kept as given; a narrow table is not touched
    assert auto_config(100_000, 100, batch_size=256).batch_size == 256
    assert auto_config(100_000, 100, epochs=9).batch_size == 256
    assert auto_config(100_000, 10).batch_size == 256


def test_the_callers_epochs_cap_pool_and_device_are_not_second_guessed():
    # a caller's epochs or cap below 20 keep the width the table gets (only the budget narrows it)
    assert auto_config(1_797, 64, epochs=10).d_model == auto_config(1_797, 64, max_epochs=10).d_model == 128
    # a caller's pool is what the plan prices, up to the pairs that exist
    five = [auto_config(1_000, 5, relationship_pool=p) for p in (10, 500)]
    assert (five[0].epochs, five[0].rows_per_epoch) == (five[1].epochs, five[1].rows_per_epoch) == (TARGET_EPOCHS, 0)
    wide = auto_config(100_000, 30, relationship_pool=200)
    assert wide.epochs * max(1, wide.rows_per_epoch) < auto_config(100_000, 30).epochs * auto_config(100_000, 30).rows_per_epoch
    # a GPU with a time budget keeps its batch; so does a caller's rows per epoch
    assert auto_config(20_000, 10, device="cuda", time_budget_s=150).batch_size == 256
    assert auto_config(100_000, 100, rows_per_epoch=10_000).batch_size == 256
