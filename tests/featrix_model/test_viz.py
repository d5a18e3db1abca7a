"""featrix_model.viz: timeline figure/summary/CLI (spec §12), MI heatmap, sphere + movie HTML (§4.5, §15)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featrix_model import viz

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_timeline(n_epochs: int = 40) -> dict:
    """OneCycle-ish run: plateau flagged NO_LEARNING at 21-25, LR boost x3 at 25 for 10 epochs, temp boost at 30."""
    rows = []
    for e in range(1, n_epochs + 1):
        frac = e / n_epochs
        lr = 2e-5 + 5.8e-4 * frac / 0.3 if frac < 0.3 else 6e-4 * (0.5 * (1 + math.cos(math.pi * (frac - 0.3) / 0.7))) + 1e-7
        actions, failures = [], []
        if 21 <= e <= 25:
            failures = ["NO_LEARNING"]
        if e == 25:
            actions = ["LR_BOOST_3X"]
        elif 26 <= e <= 34:
            actions = ["LR_BOOST_ACTIVE"]
            lr *= 3
        if e == 30:
            actions = actions + ["TEMP_BOOST_2X"]
        train = 5.0 * math.exp(-e / 12) + 1.0
        rows.append({
            "epoch": e, "learning_rate": lr, "train_loss": train,
            "validation_loss": None if e == 3 else train + 0.15 + 0.002 * e,
            "dropout_rate": 0.5 if e <= 13 else 0.375 if e <= 26 else 0.25,
            "spread_loss": 1.2 * math.exp(-e / 8) + 0.03, "spread_temperature": 0.08 if e < 30 else 0.16,
            "joint_loss": 2.0 - e * 0.02, "marginal_loss": 3.1 - e * 0.03, "reconstruction_loss": 0.4,
            "loss_weights": {"spread": 1.0, "joint": 0.8, "marginal": 0.005},
            "gradients": {"unclipped_norm": 2.4 + 0.1 * (e % 5), "clipped_norm": 2.1, "clip_ratio": 0.86},
            "failures_detected": failures, "early_stop_blocked": 21 <= e <= 34, "corrective_actions": actions,
            "val_set_resampled": e == 20,
            "collapse": {"embedding_std": 0.05, "embedding_range": 0.6, "avg_pairwise_distance": 1.1, "collapsed": False},
            "elapsed_s": 3.2 * e,
        })
    return {
        "metadata": {"initial_lr": 2e-4, "max_lr": 6e-4, "total_epochs": n_epochs, "batch_size": 128,
                     "scheduler_type": "OneCycleLR", "dropout_scheduler_enabled": True, "initial_dropout": 0.5,
                     "final_dropout": 0.25, "d_model": 64, "n_rows": 10000, "n_columns": 20},
        "timeline": rows,
        "corrective_actions": [{"epoch": 25, "action_type": "LR_BOOST", "trigger": "NO_LEARNING",
                                "details": {"lr_multiplier": 3.0, "boost_epochs": 10}}],
    }


def assert_png(path: Path, min_bytes: int = 10_000) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes


def test_timeline_figure_has_six_panels_log_lr_and_boost_markers():
    fig = viz.timeline_figure(make_timeline())
    assert len(fig.axes) == 6
    lr_ax = fig.axes[0]
    assert lr_ax.get_yscale() == "log"
    lines = lr_ax.get_lines()
    assert any(ln.get_color() == "red" and ln.get_marker() in (None, "None", "") for ln in lines)  # boosted segment
    start = [ln for ln in lines if ln.get_marker() == "o"]
    end = [ln for ln in lines if ln.get_marker() == "s"]
    assert [float(ln.get_xdata()[0]) for ln in start] == [25.0]
    assert [float(ln.get_xdata()[0]) for ln in end] == [34.0]
    loss_texts = " ".join(t.get_text() for t in fig.axes[1].texts)
    assert "NO_LEARNING" in loss_texts and "LR_BOOST_3X" in loss_texts
    titles = [ax.get_title() for ax in fig.axes]
    for word in ("Learning Rate", "Loss", "Dropout", "Gradient", "Spread", "Temperature"):
        assert any(word in t for t in titles), word


def test_plot_timeline_writes_deterministic_png(tmp_path):
    a = viz.plot_timeline(make_timeline(), tmp_path / "a.png")
    b = viz.plot_timeline(make_timeline(), tmp_path / "sub" / "b.png")
    assert a == tmp_path / "a.png"
    assert_png(a)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("timeline", [
    {"timeline": [{"epoch": 1, "learning_rate": 1e-4, "train_loss": 3.0, "validation_loss": None}]},
    {"timeline": [{"epoch": 1}, {"epoch": 2, "learning_rate": None, "gradients": None, "corrective_actions": None}]},
    {"metadata": {}, "timeline": [], "corrective_actions": []},
    {"timeline": [{"epoch": e, "learning_rate": 1e-3} for e in range(1, 6)],
     "corrective_actions": [{"epoch": 2, "action_type": "LR_BOOST", "details": {"boost_epochs": 2}}]},
])
def test_plot_timeline_tolerates_sparse_input(tmp_path, timeline):
    fig = viz.timeline_figure(timeline)
    assert len(fig.axes) == 6
    assert_png(viz.plot_timeline(timeline, tmp_path / "t.png"), min_bytes=1_000)
    assert "Failures detected" in viz.timeline_summary(timeline)


def test_timeline_summary_counts_failures_and_interventions():
    text = viz.timeline_summary(make_timeline())
    assert "40 epochs" in text
    assert "NO_LEARNING: 5" in text
    assert "LR_BOOST_3X: 1" in text and "LR_BOOST_ACTIVE: 9" in text and "TEMP_BOOST_2X: 1" in text
    assert "epoch 25: LR_BOOST (trigger NO_LEARNING)" in text and "lr_multiplier=3.0" in text
    best = re.search(r"Best validation loss: [\d.]+ at epoch (\d+)", text)
    assert best and best.group(1) == "40"
    assert "Early stopping blocked: 14 epochs" in text


def test_cli_renders_plot_next_to_json_and_prints_summary(tmp_path):
    path = tmp_path / "training_timeline.json"
    path.write_text(json.dumps(make_timeline()))
    done = subprocess.run([sys.executable, "-m", "featrix_model.viz", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "NO_LEARNING: 5" in done.stdout
    assert "LR_BOOST" in done.stdout
    assert_png(tmp_path / "training_timeline_plot.png")

    out = tmp_path / "custom" / "fig.png"
    done = subprocess.run([sys.executable, "-m", "featrix_model.viz", str(path), "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_png(out)


def test_mutual_information_heatmap(tmp_path):
    cols = ["age", "income", "city", "occupation"]
    mi = pd.DataFrame([[5.2, 1.8, 0.4, 1.2], [1.6, 6.1, 0.9, 2.3], [0.3, 0.8, 4.7, 0.6], [1.1, 2.1, 0.5, 5.8]],
                      index=cols, columns=cols)
    assert_png(viz.plot_mutual_information(mi, tmp_path / "mi.png"))
    big = pd.DataFrame(np.random.default_rng(0).random((25, 25)) * 3, columns=[f"c{i}" for i in range(25)],
                       index=[f"c{i}" for i in range(25)])
    big.iloc[0, 1] = np.nan
    assert_png(viz.plot_mutual_information(big, tmp_path / "mi_big.png"))


def assert_standalone_plotly(path: Path) -> str:
    html = path.read_text()
    assert "plotly" in html.lower()
    assert len(html) > 1_000_000  # plotly.js is inlined
    srcs = re.findall(r"<script[^>]*\bsrc\s*=\s*[\"']([^\"']*)", html)
    assert not [s for s in srcs if "cdn" in s or s.startswith("http")], srcs
    return html


def _points(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3))


def test_sphere_html_categorical_and_numeric(tmp_path):
    pts = _points(60, 0)
    labels = np.array(["a", "b", "c"] * 20)
    path = viz.sphere_html(pts, tmp_path / "sphere.html", color=labels,
                           hover=[f"row {i}" for i in range(60)], title="sphere")
    html = assert_standalone_plotly(path)
    assert "row 7" in html
    fig = viz.sphere_figure(pts, color=labels)
    assert [t.name for t in fig.data[1:]] == ["a", "b", "c"]
    xyz = np.stack([np.concatenate([t.x for t in fig.data[1:]]), np.concatenate([t.y for t in fig.data[1:]]),
                    np.concatenate([t.z for t in fig.data[1:]])], axis=1)
    assert np.allclose(np.linalg.norm(xyz, axis=1), 1.0)
    assert_standalone_plotly(viz.sphere_html(pts, tmp_path / "num.html", color=np.linspace(0, 1, 60)))
    assert_standalone_plotly(viz.sphere_html(pts, tmp_path / "plain.html"))
    with pytest.raises(ValueError):
        viz.sphere_figure(pts, color=labels[:10])


def test_movie_html_has_one_frame_per_epoch(tmp_path):
    frames = [_points(50, s) * (1 + s) for s in range(6)]
    epochs = [1, 2, 5, 10, 20, 40]
    labels = np.array([0, 1] * 25)
    path = viz.movie_html(frames, tmp_path / "movie.html", epochs=epochs, color=labels)
    html = assert_standalone_plotly(path)
    fig = viz.movie_figure(frames, epochs=epochs, color=labels)
    assert len(fig.frames) == len(frames)
    assert [f.name for f in fig.frames] == [str(e) for e in epochs]
    assert len(fig.layout.sliders[0].steps) == len(frames)
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["Play", "Pause"]
    assert html.count('"name":"40"') + html.count('"name": "40"') >= 1
    assert len(viz.movie_figure(frames).frames) == len(frames)
