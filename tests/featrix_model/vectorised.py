"""A deterministic stand-in for a timer in vectorisation tests: count the Python lines executed
inside ``featrix_model`` (every loop iteration, comprehension step or per-row lambda of ours is a
line event). Vectorised code runs the same lines at any input size; per-row Python runs ~100× more
lines on 100× the rows, whatever the machine's load."""

from __future__ import annotations

import sys

import featrix_model

ROOT = featrix_model.__path__[0]


def lines_run(fn):
    """(line events inside featrix_model while ``fn()`` runs, its result)."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        count += event == "line"
        return local

    old = sys.gettrace()
    sys.settrace(lambda frame, event, arg: local if frame.f_code.co_filename.startswith(ROOT) else None)
    try:
        out = fn()
    finally:
        sys.settrace(old)
    return count, out
