"""Training progress in the run's log while a step trains: the model library's epoch lines
(``featrix_model.progress``) forwarded to ``context.log``, prefixed with what is training."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import dagster as dg

from featrix_model.progress import PROGRESS


class _ToRunLog(logging.Handler):
    def __init__(self, context: dg.AssetExecutionContext, prefix: str):
        super().__init__(level=logging.INFO)
        self.context, self.prefix = context, prefix

    def emit(self, record: logging.LogRecord) -> None:
        self.context.log.info(f"[{self.prefix}] {record.getMessage()}")


@contextmanager
def progress_to_run_log(context: dg.AssetExecutionContext, prefix: str):
    """While the block runs, every epoch line goes to the run log as ``[prefix] … epoch k/n: …``."""
    handler, level = _ToRunLog(context, prefix), PROGRESS.level
    PROGRESS.addHandler(handler)
    PROGRESS.setLevel(logging.INFO)
    try:
        yield
    finally:
        PROGRESS.removeHandler(handler)
        PROGRESS.setLevel(level)
