"""Content-addressed artifacts: one folder per key, reused when the key comes back.

``ArtifactStore(root)`` holds the trained versions of one model asset (``<store>/<table>/
embedding_space/<key>/``). A version counts only once its ``summary.json`` is written, last and
atomically, so a run killed while training leaves a folder that is never reused (it is trained
again). ``prune`` keeps the newest versions up to the spec's retention, never the protected ones
(the version serving predictions).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import socket
import uuid
from pathlib import Path

from featrix_model.io import process_alive
from featrix_model.jsonable import to_jsonable

SUMMARY = "summary.json"
_HOST = "".join(ch for ch in socket.gethostname() if ch.isalnum())[:32] or "host"  # no "-" in it


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


log = logging.getLogger(__name__)


def write_json_atomically(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(json.dumps(to_jsonable(obj), indent=1, default=str))
        fh.flush()
        os.fsync(fh.fileno())  # on disk before the rename makes it the summary (a power cut leaves old or new)
    os.replace(tmp, path)


class ArtifactStore:
    def __init__(self, root: Path, retention: int = 3):
        self.root, self.retention = Path(root), retention

    def folder(self, key: str) -> Path:
        return self.root / key

    def find(self, key: str) -> dict | None:
        """The summary of the finished version ``key``, or None (never trained, or unfinished). Paths in
        it point into the folder where it is now (an artifact tree can be moved or copied)."""
        path = self.folder(key) / SUMMARY
        if not path.exists():
            return None
        summary = _read_summary(path)
        if summary is None:  # damaged (a disk fault, a hand edit): set aside, so this key trains again
            aside = self.root / f".damaged-{key}-{uuid.uuid4().hex[:8]}"
            os.replace(self.folder(key), aside)
            log.warning("%s is not readable JSON: version %s was moved to %s and will be trained again", path, key,
                        aside)
            return None
        return _moved(summary, summary.get("path"), str(self.folder(key)))

    def start(self, key: str) -> Path:
        """A private, empty folder to train version ``key`` in (``publish`` moves it into place), so two
        runs training the same key never write into one folder."""
        tmp = self.root / f".training-{key}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        return tmp

    def checkpoints(self, key: str) -> Path:
        """Where version ``key``'s training writes its per-epoch checkpoints: a killed run's next try
        at the same key resumes from them; ``publish`` removes them."""
        return self.root / f".checkpoints-{key}"

    def publish(self, key: str, tmp: Path, summary: dict) -> dict:
        """Move a trained folder into place as version ``key`` with its ``summary`` (paths into ``tmp``
        rewritten to the final folder) and return the summary now in place. The summary is written
        inside ``tmp`` before the rename, so a version folder only ever appears complete. If another
        run published the same key meanwhile, its version stays and this copy is dropped."""
        final = self.folder(key)
        summary = _moved(summary, str(tmp), str(final))
        write_json_atomically(tmp / SUMMARY, summary)
        shutil.rmtree(self.checkpoints(key), ignore_errors=True)  # the trained version is saved whole now
        for attempt in range(2):
            try:
                os.replace(tmp, final)  # fails on an existing, non-empty folder
                return summary
            except OSError:
                if (found := self.find(key)) is not None:  # another run published it first: keep that one
                    shutil.rmtree(tmp, ignore_errors=True)
                    return found
                if attempt or not final.exists():
                    raise
                # an incomplete folder left by older code: move it aside (atomic), then retry once
                aside = self.root / f".stale-{key}-{uuid.uuid4().hex[:8]}"
                os.replace(final, aside)
                shutil.rmtree(aside, ignore_errors=True)
        return summary

    def versions(self) -> list[tuple[str, str]]:
        """(trained_at, key) of every finished version, oldest first."""
        out = []
        for folder in self.root.iterdir() if self.root.exists() else ():
            if folder.name.startswith("."):
                continue
            summary = folder / SUMMARY
            read = _read_summary(summary) if folder.is_dir() and summary.exists() else None
            if read is not None:  # (an unreadable one is unfinished: find() sets it aside)
                out.append((read.get("trained_at", ""), folder.name))
        return sorted(out)

    def prune(self, protect: set[str] = frozenset()) -> list[str]:
        """Remove finished versions beyond the newest ``retention`` (never one in ``protect``); their keys."""
        finished = [key for _, key in self.versions()]
        removable = [k for k in finished[: max(0, len(finished) - self.retention)] if k not in protect]
        for key in removable:
            shutil.rmtree(self.folder(key), ignore_errors=True)
        for key in finished:  # a finished version needs no checkpoints (a killed run's retry published it)
            shutil.rmtree(self.checkpoints(key), ignore_errors=True)
        for folder in self.root.glob(f".training-*-{_HOST}-*") if self.root.exists() else ():
            if not process_alive(folder.name.split("-")[-2]):  # what a killed training run on this machine left
                shutil.rmtree(folder, ignore_errors=True)
        return removable


def _read_summary(path: Path) -> dict | None:
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def _moved(summary: dict, old: str | None, new: str) -> dict:
    """``summary`` with every path under folder ``old`` pointing under ``new`` instead."""
    if not old or old == new:
        return summary
    return json.loads(json.dumps(to_jsonable(summary), default=str).replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1]))


def reused(summary: dict) -> dict:
    """A stored summary as the output of a run that reused it."""
    return {**summary, "reused": True}
