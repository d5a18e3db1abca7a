"""Training progress as log lines, while training runs: one line per epoch (at most ``LINES`` per
training, evenly spaced, plus the last), on the ``featrix_model.progress`` logger. An orchestrator
forwards that logger to its run log; nothing here changes what is trained.
"""

from __future__ import annotations

import logging
import math

PROGRESS = logging.getLogger("featrix_model.progress")
LINES = 20  # epoch lines per training at most
ACTIONS = 2  # corrective actions named on one line (the timeline keeps them all)


def epoch_line(what: str, epoch: int, epochs: int, entry: dict, stopping: bool = False) -> None:
    """Log ``entry``'s losses for ``epoch`` of ``epochs`` when it is one of the lines to show."""
    every = max(1, math.ceil(epochs / LINES))
    if epoch % every and epoch != epochs and not stopping:
        return
    parts = [f"train loss {entry['train_loss']:.4f}"]
    if entry.get("validation_loss") is not None:
        parts.append(f"validation loss {entry['validation_loss']:.4f}")
    if entry.get("learning_rate") is not None:
        parts.append(f"learning rate {entry['learning_rate']:.2e}")
    actions = list(dict.fromkeys(a for a in entry.get("corrective_actions") or [] if isinstance(a, str)))
    if actions:
        more = f" (+{len(actions) - ACTIONS} more)" if len(actions) > ACTIONS else ""
        parts.append("actions: " + "; ".join(actions[:ACTIONS]) + more)
    PROGRESS.info(f"{what} epoch {epoch}/{epochs}: " + ", ".join(parts) + (" (early stop)" if stopping else ""))
