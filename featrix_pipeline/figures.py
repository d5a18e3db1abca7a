"""Figures of a predictor on its held-out rows: a calibration curve (binary targets) and a
confusion matrix (classification), written as PNG beside the predictor's artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from featrix_model.tasks import TaskType


def predictor_figures(task, y_true, resp: pd.DataFrame, out_dir: Path) -> dict[str, str]:
    """{figure name: PNG path}; ``y_true``: the held-out labels, ``resp``: the predictor's frame for them."""
    figs = {}
    if task.kind == TaskType.BINARY:
        figs["calibration"] = _calibration(resp["probability"].to_numpy(), task.is_positive(y_true).astype(int), out_dir)
    if task.kind != TaskType.REGRESSION:
        figs["confusion_matrix"] = _confusion(pd.Series(np.asarray(y_true)).astype(str),
                                              resp["prediction"].astype(str), out_dir)
    return figs


def _save(fig, path: Path) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).print_png(str(path))
    return str(path)


def _calibration(probability: np.ndarray, positive: np.ndarray, out_dir: Path) -> str:
    from matplotlib.figure import Figure

    from featrix_model.calibration import reliability_curve

    curve = reliability_curve(probability, positive)
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "--", color="grey")
    obs = [np.nan if v is None else v for v in curve["observed_frequency"]]
    ax.plot(curve["mean_predicted"] if "mean_predicted" in curve else curve["bin_centers"], obs, "o-")
    ax.set(xlabel="predicted probability", ylabel="observed frequency", title="Calibration (held-out)")
    return _save(fig, out_dir / "calibration.png")


def _confusion(truth: pd.Series, predicted: pd.Series, out_dir: Path) -> str:
    from matplotlib.figure import Figure
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(truth) | set(predicted))
    cm = confusion_matrix(truth, predicted, labels=labels)
    fig = Figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    ax.imshow(cm, cmap="Blues")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted", ylabel="true",
           title="Confusion matrix (held-out)")
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticklabels(labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8)
    fig.tight_layout()
    return _save(fig, out_dir / "confusion_matrix.png")


INLINE_WIDTH = 900  # pixels: the widest a figure is shown inline in the UI's metadata
INLINE_COLOURS = 256  # a palette this size keeps a matplotlib figure readable at a quarter of the bytes


def inline_markdown(path: str | Path, title: str) -> str | None:
    """Markdown showing the PNG at ``path`` as an image (a data URI, so the UI needs no file access),
    scaled to at most ``INLINE_WIDTH`` pixels and reduced to a palette; None when it is not a
    readable PNG."""
    import base64
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
    except (OSError, UnidentifiedImageError):
        return None
    if img.width > INLINE_WIDTH:
        img = img.resize((INLINE_WIDTH, round(img.height * INLINE_WIDTH / img.width)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.quantize(colors=INLINE_COLOURS, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
    return f"![{title}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode('ascii')})"
