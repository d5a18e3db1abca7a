"""Visualization: spec §4.5 "Visualization Capabilities", §12 "Training Timeline", §15 "Dual Embeddings".

* ``timeline_figure`` / ``plot_timeline``: the 6-subplot training_timeline_plot.png of §12 - 1 Learning
  Rate (log scale, "Blue for normal schedule, red for boosted periods", "circle = boost start, square =
  boost end"), 2 Train/Val Loss with intervention markers and failure labels, 3 Dropout (piecewise
  constant), 4 Gradient Norms (unclipped vs clipped), 5 Spread Loss, 6 Adaptive Temperature.
* ``timeline_summary``: "a text summary with failure counts and interventions".
* ``plot_mutual_information``: heatmap of MI[i, j] = bits column i provides about column j.
* ``sphere_html`` / ``movie_html``: short (3D, unit-sphere) embeddings as standalone plotly HTML with
  plotly.js inlined (no CDN), the movie with one frame per epoch, a slider and a play button.

Matplotlib is used through ``Figure`` + ``FigureCanvasAgg`` only, so importing this module does not
touch pyplot's global state or the selected backend. CLI:
``python -m featrix_model.viz training_timeline.json [--out figure.png]``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DEFAULT_PLOT_NAME = "training_timeline_plot.png"
_PNG_META = {"Software": None}  # no version string in the file: byte-identical renders


def _num(value: Any) -> float:
    """A finite-or-nan float from a JSON value (None, bools and strings become nan)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return math.nan
    return float(value)


def _entries(timeline: dict | list) -> list[dict]:
    rows = timeline.get("timeline", []) if isinstance(timeline, dict) else timeline
    return [r for r in (rows or []) if isinstance(r, dict)]


def _series(rows: list[dict], *keys: str) -> np.ndarray:
    out = []
    for r in rows:
        v: Any = r
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        out.append(_num(v))
    return np.asarray(out, dtype=float)


def _epochs(rows: list[dict]) -> np.ndarray:
    return np.asarray([_num(r.get("epoch")) if r.get("epoch") is not None else i + 1
                       for i, r in enumerate(rows)], dtype=float)


def _actions(row: dict) -> list[str]:
    return [str(a) for a in (row.get("corrective_actions") or [])]


def _boost_runs(rows: list[dict], epochs: np.ndarray, top_actions: list[dict]) -> list[tuple[int, int]]:
    """Index ranges [start, end] of LR-boosted periods: per-epoch LR_BOOST* flags, else top-level actions."""
    flags = [any(a.startswith("LR_BOOST") for a in _actions(r)) for r in rows]
    if not any(flags):
        for act in top_actions:
            if str(act.get("action_type", "")).startswith("LR_BOOST") and act.get("epoch") is not None:
                e0, n = _num(act["epoch"]), (act.get("details") or {}).get("boost_epochs", 20)
                flags = [f or (e0 <= e <= e0 + _num(n)) for f, e in zip(flags, epochs)]
    runs, start = [], None
    for i, f in enumerate(flags + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            runs.append((start, i - 1))
            start = None
    return runs


def _intervention_epochs(rows: list[dict], epochs: np.ndarray, top_actions: list[dict]) -> list[float]:
    """Epochs where an intervention was applied (per-epoch actions minus *_ACTIVE, plus top-level)."""
    found = {float(e) for r, e in zip(rows, epochs) if any(not a.endswith("_ACTIVE") for a in _actions(r))}
    found |= {_num(a.get("epoch")) for a in top_actions if a.get("epoch") is not None}
    return sorted(e for e in found if math.isfinite(e))


def _line(ax, x, y, **kw) -> bool:
    ok = np.isfinite(y)
    if not ok.any():
        return False
    ax.plot(x, y, marker="." if ok.sum() < 3 else None, **kw)
    return True


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")


def timeline_figure(timeline: dict) -> Figure:
    """The 6-panel training figure of spec §12 (not attached to pyplot)."""
    rows, meta = _entries(timeline), (timeline.get("metadata") or {}) if isinstance(timeline, dict) else {}
    top = [a for a in ((timeline.get("corrective_actions") if isinstance(timeline, dict) else None) or [])
           if isinstance(a, dict)]
    ep = _epochs(rows)
    fig = Figure(figsize=(16, 13), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 2, sharex=True).ravel()
    title = "Training timeline"
    if meta:
        title += "  ({} epochs, batch {}, {})".format(meta.get("total_epochs", len(rows)),
                                                      meta.get("batch_size", "?"), meta.get("scheduler_type", "?"))
    fig.suptitle(title, fontsize=14)

    ax = axes[0]  # 1. learning rate
    lr = _series(rows, "learning_rate")
    lr[lr <= 0] = np.nan
    if _line(ax, ep, lr, color="tab:blue", label="scheduled LR"):
        for k, (s, e) in enumerate(_boost_runs(rows, ep, top)):
            ax.plot(ep[s:e + 1], lr[s:e + 1], color="red", lw=2.2, marker="." if e == s else None,
                    label="LR boost" if k == 0 else None)
            ax.plot([ep[s]], [lr[s]], "o", color="red", ms=9, mfc="none", mew=2,
                    label="boost start" if k == 0 else None)
            if e < len(rows) - 1:
                ax.plot([ep[e]], [lr[e]], "s", color="red", ms=8, mfc="none", mew=2,
                        label="boost end" if k == 0 else None)
        ax.legend(loc="lower left", fontsize=8)
    else:
        _no_data(ax)
    ax.set_yscale("log")
    ax.set_title("1. Learning Rate Schedule (log scale)")
    ax.set_ylabel("learning rate")

    ax = axes[1]  # 2. train/val loss with interventions + failures
    has = _line(ax, ep, _series(rows, "train_loss"), color="tab:green", label="train loss")
    has |= _line(ax, ep, _series(rows, "validation_loss"), color="tab:red", label="validation loss")
    for k, e in enumerate(_intervention_epochs(rows, ep, top)):
        ax.axvline(e, color="tab:orange", ls="--", lw=1.2, label="intervention" if k == 0 else None)
        names = sorted({a for r, x in zip(rows, ep) if x == e for a in _actions(r) if not a.endswith("_ACTIVE")})
        names += sorted({str(a.get("action_type")) for a in top if _num(a.get("epoch")) == e
                         and not any(n.startswith(str(a.get("action_type"))) for n in names)})
        ax.annotate(", ".join(names), xy=(e, 0.02), xycoords=ax.get_xaxis_transform(), xytext=(3, 0),
                    textcoords="offset points", rotation=90, fontsize=7, color="tab:orange", va="bottom")
    previous: tuple = ()
    for r, e in zip(rows, ep):
        fails = tuple(str(f) for f in (r.get("failures_detected") or []))
        if fails and fails != previous:
            ax.annotate(", ".join(fails), xy=(e, 0.97), xycoords=ax.get_xaxis_transform(), fontsize=7,
                        color="darkred", ha="left", va="top", rotation=-30)
            ax.axvline(e, color="darkred", ls=":", lw=0.8)
        previous = fails
    ax.legend(loc="upper right", fontsize=8) if has else _no_data(ax)
    ax.set_title("2. Train/Val Loss with Intervention Markers")
    ax.set_ylabel("loss")

    ax = axes[2]  # 3. dropout
    d = _series(rows, "dropout_rate")
    if np.isfinite(d).any():
        ax.step(ep, d, where="post", color="tab:purple", marker="." if len(ep) < 3 else None)
    else:
        _no_data(ax)
    ax.set_title("3. Dropout Schedule")
    ax.set_ylabel("dropout rate")

    ax = axes[3]  # 4. gradients
    has = _line(ax, ep, _series(rows, "gradients", "unclipped_norm"), color="tab:red", label="unclipped norm")
    has |= _line(ax, ep, _series(rows, "gradients", "clipped_norm"), color="tab:blue", ls="--", label="clipped norm")
    ax.legend(loc="best", fontsize=8) if has else _no_data(ax)
    ax.set_title("4. Gradient Norms (unclipped vs clipped)")
    ax.set_ylabel("L2 norm")

    ax = axes[4]  # 5. spread loss
    _line(ax, ep, _series(rows, "spread_loss"), color="tab:cyan") or _no_data(ax)
    ax.set_title("5. Spread Loss (contrastive)")
    ax.set_ylabel("spread loss")

    ax = axes[5]  # 6. temperature, with temperature boosts marked
    if _line(ax, ep, _series(rows, "spread_temperature"), color="tab:brown"):
        for e in [x for r, x in zip(rows, ep) if any(a.startswith("TEMP_BOOST") for a in _actions(r))]:
            ax.axvline(e, color="tab:orange", ls="--", lw=1)
    else:
        _no_data(ax)
    ax.set_title("6. Adaptive Temperature")
    ax.set_ylabel("temperature")

    for ax in axes:
        ax.grid(True, alpha=0.3)
    for ax in axes[4:]:
        ax.set_xlabel("epoch")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def plot_timeline(timeline: dict, path) -> Path:
    """Render ``timeline_figure(timeline)`` to a PNG at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    timeline_figure(timeline).savefig(path, format="png", metadata=_PNG_META)
    return path


def timeline_summary(timeline: dict) -> str:
    """Plain-text summary: epochs, best/final losses, failure counts, interventions."""
    rows = _entries(timeline)
    meta = (timeline.get("metadata") or {}) if isinstance(timeline, dict) else {}
    top = (timeline.get("corrective_actions") if isinstance(timeline, dict) else None) or []
    ep, train, val = _epochs(rows), _series(rows, "train_loss"), _series(rows, "validation_loss")
    fmt = lambda v: f"{v:.4g}" if math.isfinite(v) else "n/a"  # noqa: E731
    out = [f"Training timeline: {len(rows)} epochs recorded"
           + (f" of {meta['total_epochs']} planned" if meta.get("total_epochs") else "")]
    if meta:
        out.append("  " + ", ".join(f"{k}={meta[k]}" for k in ("scheduler_type", "initial_lr", "max_lr",
                   "batch_size", "initial_dropout", "final_dropout", "d_model", "n_rows", "n_columns") if k in meta))
    if rows:
        if np.isfinite(val).any():
            i = int(np.nanargmin(val))
            out.append(f"Best validation loss: {fmt(val[i])} at epoch {fmt(ep[i])}")
        out.append(f"Final (epoch {fmt(ep[-1])}): train loss {fmt(train[-1])}, validation loss {fmt(val[-1])}")
        lr = _series(rows, "learning_rate")
        if np.isfinite(lr).any():
            out.append(f"Learning rate: min {fmt(np.nanmin(lr))}, max {fmt(np.nanmax(lr))}, final {fmt(lr[-1])}")
        ratio = _series(rows, "gradients", "clip_ratio")
        if np.isfinite(ratio).any():
            out.append(f"Gradient clip ratio: mean {fmt(np.nanmean(ratio))}, min {fmt(np.nanmin(ratio))}")
    fails = Counter(str(f) for r in rows for f in (r.get("failures_detected") or []))
    out.append("Failures detected (epochs flagged): "
               + (", ".join(f"{k}: {v}" for k, v in sorted(fails.items())) if fails else "none"))
    for name in sorted(fails):
        hit = [fmt(e) for r, e in zip(rows, ep) if name in (r.get("failures_detected") or [])]
        out.append(f"  {name}: epochs {', '.join(hit)}")
    acts = Counter(a for r in rows for a in _actions(r))
    out.append("Corrective actions (epochs): "
               + (", ".join(f"{k}: {v}" for k, v in sorted(acts.items())) if acts else "none"))
    out.append(f"Interventions: {len(top)}")
    for a in top:
        details = ", ".join(f"{k}={v}" for k, v in (a.get("details") or {}).items())
        out.append(f"  epoch {a.get('epoch')}: {a.get('action_type')} (trigger {a.get('trigger')})"
                   + (f" {details}" if details else ""))
    for key, label in (("early_stop_blocked", "Early stopping blocked"), ("val_set_resampled",
                       "Validation set resampled")):
        out.append(f"{label}: {sum(bool(r.get(key)) for r in rows)} epochs")
    collapsed = sum(bool((r.get("collapse") or {}).get("collapsed")) for r in rows)
    if collapsed:
        out.append(f"Embedding collapse flagged: {collapsed} epochs")
    return "\n".join(out)


def plot_mutual_information(mi: pd.DataFrame, path) -> Path:
    """Heatmap PNG of MI[i, j]: bits row column i ("from") provides about column j ("about")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    values = mi.to_numpy(dtype=float)
    n_rows, n_cols = values.shape
    fig = Figure(figsize=(max(5.0, 0.6 * n_cols + 3), max(4.0, 0.5 * n_rows + 2)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", aspect="auto")
    fig.colorbar(im, ax=ax, label="bits")
    ax.set_xticks(range(n_cols), [str(c) for c in mi.columns], rotation=45, ha="right")
    ax.set_yticks(range(n_rows), [str(c) for c in mi.index])
    ax.set_xlabel("about (column j)")
    ax.set_ylabel("from (column i)")
    ax.set_title("Mutual information MI[i, j] (bits)")
    if max(n_rows, n_cols) <= 20 and np.isfinite(values).any():
        mid = np.nanmin(values) + 0.5 * (np.nanmax(values) - np.nanmin(values))
        for i in range(n_rows):
            for j in range(n_cols):
                v = values[i, j]
                ax.text(j, i, f"{v:.1f}" if math.isfinite(v) else "-", ha="center", va="center",
                        fontsize=8, color="black" if math.isfinite(v) and v > mid else "white")
    fig.tight_layout()
    fig.savefig(path, format="png", metadata=_PNG_META)
    return path


# ----------------------------------------------------------------------------------------- 3D sphere
def _unit(points) -> np.ndarray:
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    norm = np.linalg.norm(p, axis=1, keepdims=True)
    return np.divide(p, norm, out=np.zeros_like(p), where=norm > 0)


def _wireframe():
    import plotly.graph_objects as go
    xs, ys, zs = [], [], []
    t = np.linspace(0, 2 * np.pi, 61)
    for lat in np.linspace(-60, 60, 5) * np.pi / 180:  # parallels
        xs += list(np.cos(lat) * np.cos(t)) + [None]
        ys += list(np.cos(lat) * np.sin(t)) + [None]
        zs += [float(np.sin(lat))] * len(t) + [None]
    for lon in np.linspace(0, np.pi, 6, endpoint=False):  # meridians
        xs += list(np.cos(t) * np.cos(lon)) + [None]
        ys += list(np.cos(t) * np.sin(lon)) + [None]
        zs += list(np.sin(t)) + [None]
    return go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line=dict(color="rgba(128,128,128,0.25)", width=1),
                        hoverinfo="skip", showlegend=False, name="sphere")


def _point_traces(p: np.ndarray, color=None, hover: Sequence[str] | None = None) -> list:
    """Scatter3d traces for one point set: one per label (categorical) or one with a colour scale."""
    import plotly.colors
    import plotly.graph_objects as go
    n = len(p)
    text = list(hover) if hover is not None else None
    if color is None:
        return [go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name="rows", text=text,
                             marker=dict(size=3, color="#1f77b4"))]
    c = np.asarray(color)
    if len(c) != n:
        raise ValueError(f"color has {len(c)} values for {n} points")
    if c.dtype.kind in "iuf" and len(np.unique(c[np.isfinite(c.astype(float))])) > 20:
        return [go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name="rows", text=text,
                             marker=dict(size=3, color=c.astype(float), colorscale="Viridis", showscale=True))]
    labels = np.asarray([str(v) for v in c])
    palette = plotly.colors.qualitative.Plotly + plotly.colors.qualitative.Dark24
    traces = []
    for k, lab in enumerate(sorted(set(labels))):
        m = labels == lab
        traces.append(go.Scatter3d(x=p[m, 0], y=p[m, 1], z=p[m, 2], mode="markers", name=lab,
                                   text=[t for t, keep in zip(text, m) if keep] if text else None,
                                   marker=dict(size=3, color=palette[k % len(palette)])))
    return traces


def _layout(title: str) -> dict:
    axis = dict(range=[-1.1, 1.1], showbackground=False, zeroline=False)
    return dict(title=title, template="plotly_white", margin=dict(l=0, r=0, t=50, b=0),
                scene=dict(xaxis=axis, yaxis=axis, zaxis=axis, aspectmode="cube"))


def _write(fig, path, div_id: str) -> Path:
    import plotly.io as pio
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pio.write_html(fig, str(path), include_plotlyjs=True, full_html=True, auto_play=False, div_id=div_id)
    return path


def sphere_figure(short: np.ndarray, color=None, hover: Sequence[str] | None = None, title: str = ""):
    """Plotly figure of short (3D) embeddings on the unit sphere (spec §4.5, §15)."""
    import plotly.graph_objects as go
    return go.Figure(data=[_wireframe(), *_point_traces(_unit(short), color, hover)], layout=_layout(title))


def sphere_html(short: np.ndarray, path, color=None, hover: Sequence[str] | None = None, title: str = "") -> Path:
    """Standalone HTML (plotly.js inlined) of ``sphere_figure``."""
    return _write(sphere_figure(short, color, hover, title), path, "featrix-sphere")


def movie_figure(frames: list[np.ndarray], epochs: list[int] | None = None, color=None, title: str = "Training movie"):
    """Animated plotly figure: one frame per epoch, slider + play/pause buttons."""
    import plotly.graph_objects as go
    if not frames:
        raise ValueError("movie needs at least one frame")
    epochs = list(epochs) if epochs is not None else list(range(1, len(frames) + 1))
    if len(epochs) != len(frames):
        raise ValueError(f"{len(epochs)} epochs for {len(frames)} frames")
    per_frame = [_point_traces(_unit(f), color) for f in frames]
    if len({len(t) for t in per_frame}) > 1:
        raise ValueError("every frame must show the same labels")
    idx = list(range(1, len(per_frame[0]) + 1))  # trace 0 is the wireframe
    movie = [go.Frame(data=t, traces=idx, name=str(e), layout=dict(title=f"{title} - epoch {e}"))
             for t, e in zip(per_frame, epochs)]
    fig = go.Figure(data=[_wireframe(), *per_frame[0]], frames=movie, layout=_layout(f"{title} - epoch {epochs[0]}"))
    anim = dict(frame=dict(duration=300, redraw=True), transition=dict(duration=0), mode="immediate")
    fig.update_layout(
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=0.0, xanchor="left", yanchor="top",
                          buttons=[dict(label="Play", method="animate", args=[None, {**anim, "fromcurrent": True}]),
                                   dict(label="Pause", method="animate",
                                        args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")])])],
        sliders=[dict(active=0, x=0.15, len=0.85, y=0.0, currentvalue=dict(prefix="epoch "),
                      steps=[dict(label=str(e), method="animate", args=[[str(e)], anim]) for e in epochs])])
    return fig


def movie_html(frames: list[np.ndarray], path, epochs: list[int] | None = None, color=None) -> Path:
    """Standalone animated HTML ("training movie", spec §4.5) of ``movie_figure``."""
    return _write(movie_figure(frames, epochs, color), path, "featrix-movie")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m featrix_model.viz",
                                     description="Plot a training_timeline.json (per-epoch training record) and print a summary.")
    parser.add_argument("timeline", type=Path, help="path to training_timeline.json")
    parser.add_argument("--out", type=Path, default=None, help=f"PNG path (default: {DEFAULT_PLOT_NAME} next to the JSON)")
    args = parser.parse_args(argv)
    if not args.timeline.is_file():
        parser.error(f"no such file: {args.timeline}")
    timeline = json.loads(args.timeline.read_text())
    out = plot_timeline(timeline, args.out or args.timeline.with_name(DEFAULT_PLOT_NAME))
    print(timeline_summary(timeline))
    print(f"Plot written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
