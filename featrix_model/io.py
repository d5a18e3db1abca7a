"""Artifacts: ``config.json`` + ``model.safetensors`` (+ codec, timeline and MI JSON). Never pickle.

Loading rebuilds the model from the config, then loads the weights (Hugging Face's config/model
split); extra tensors (training embeddings) live in the same safetensors file under ``__``-prefixed
names.

Every save is atomic (``saving``): the files are written into a hidden sibling folder, then
``manifest.json`` (each file's sha256 and size, no timestamps, so the same model saved twice gives
the same bytes) is written last, then the folder is renamed into place — an existing folder is
swapped with it in one step where the OS allows (Linux ``renameat2``), else renamed aside, the new
one renamed in and the old removed. A destination therefore only ever holds a complete artifact, and
a run killed mid-save leaves the previous one as it was. Loading first checks the folder against
its manifest (``verify``); whatever is wrong with a saved folder (a file missing, truncated, changed
after saving, not JSON, weights of another shape) is one ``ArtifactError`` naming the folder, the
file and what to do.
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file

from featrix_model.jsonable import to_jsonable

FORMAT = "featrix-embedding-space"
VERSION = 2  # 2: string encoders with output widths and a ZERO constant, relationship masks, groups
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "featrix-manifest"
LIVE_TIMELINE = "timeline.partial.json"  # where training writes its timeline every epoch (never an artifact file)
REMEDY = "save it again from the fitted object, or train it again"
_HOST = socket.gethostname().replace("-", "_") or "host"
log = logging.getLogger("featrix_model")


class ArtifactError(ValueError):
    """A saved artifact folder that cannot be loaded as it is. ``folder`` and ``file`` (relative to
    it) name the culprit; the message says what is wrong and what to do."""

    def __init__(self, folder: str | Path, file: str, problem: str, remedy: str = REMEDY):
        self.folder, self.file = Path(folder), file
        super().__init__(f"cannot load the artifact in {folder}: {file} {problem}; {remedy}.")


# ---------------------------------------------------------------------------------- files


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(to_jsonable(obj), indent=1))


def write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename: a reader (or a kill) never sees half a file."""
    part = path.with_name(f".{path.name}.writing")
    part.write_text(text)
    os.replace(part, path)


def read_json(path: Path) -> dict:
    """The JSON object in ``path`` (an artifact file); ``ArtifactError`` when it is missing or not a JSON object."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ArtifactError(path.parent, path.name, "cannot be read: the folder does not exist",
                            "check the path (nothing was saved there)")
    if not path.is_file():
        raise ArtifactError(path.parent, path.name, "is missing")
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as e:
        raise ArtifactError(path.parent, path.name, f"is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ArtifactError(path.parent, path.name, f"holds a JSON {type(doc).__name__}, not the object it should")
    return doc


def fields(doc: dict, path: Path, *names: str) -> list:
    """``doc[name]`` for each name; ``ArtifactError`` naming ``path`` when any is absent."""
    missing = [n for n in names if n not in doc]
    if missing:
        raise ArtifactError(path.parent, path.name, f"lacks {', '.join(repr(n) for n in missing)}")
    return [doc[n] for n in names]


def space_kind(path: Path, config: dict) -> str:
    """Which class a saved space folder holds: the ``kind`` field of its config.json (folders saved
    before the field existed: a relational space is the one with a relational.json)."""
    return config.get("kind") or ("relational" if (path / "relational.json").exists() else "table")


def save_tensors(path: Path, state: dict[str, torch.Tensor], extra: dict[str, torch.Tensor],
                 format: str = FORMAT) -> None:
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    tensors.update({f"__{k}": v.detach().cpu().contiguous().clone() for k, v in extra.items()})
    # one metadata key: safetensors writes several in no fixed order, so two saves of the same tensors
    # would differ in bytes (the version lives in config.json)
    save_file(tensors, str(path), metadata={"format": format})


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    if not path.is_file():
        raise ArtifactError(path.parent, path.name, "is missing")
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors' own error type: a truncated or foreign file
        raise ArtifactError(path.parent, path.name, f"cannot be read as safetensors ({e})") from None
    state = {k: v for k, v in tensors.items() if not k.startswith("__")}
    extra = {k[2:]: v for k, v in tensors.items() if k.startswith("__")}
    return state, extra


def load_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """``module.load_state_dict(state)``; weights of other names or shapes than the module that the
    config built are an ``ArtifactError`` naming the weights file."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise ArtifactError(path.parent, path.name, "holds weights that do not fit the network config.json "
                            f"describes ({detail[:600]})") from None


# ---------------------------------------------------------------------------------- manifest


def hash_weights(h, module: torch.nn.Module) -> None:
    """Feed every parameter and buffer of ``module`` (name, then raw bytes, in ``state_dict`` order) to
    the hashlib object ``h``: what a digest of a network's current weights covers."""
    for name, t in module.state_dict().items():
        h.update(name.encode() + b"\0" + t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> None:
    """``manifest.json``: every file under ``folder`` (nested artifacts included) with its sha256 and size."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())
    listed = {p.relative_to(folder).as_posix(): {"sha256": _sha256(p), "size": p.stat().st_size}
              for p in files if p.relative_to(folder).as_posix() != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"format": MANIFEST_FORMAT, "version": 1, "files": listed}, indent=1))


def verify(folder: str | Path) -> bool:
    """Check every file ``manifest.json`` lists (files added later, e.g. by the pipeline, are not
    checked). False, with a warning, for a folder saved before manifests existed."""
    folder = Path(folder)
    if not (folder / MANIFEST).exists():
        if folder.is_dir():
            log.warning("%s has no %s (saved before manifests were written): its files are loaded unchecked; "
                        "save it again to add one", folder, MANIFEST)
        return False
    listed = read_json(folder / MANIFEST).get("files")
    if not isinstance(listed, dict):
        raise ArtifactError(folder, MANIFEST, "does not list the artifact's files")
    for name, want in listed.items():
        if name.startswith("/") or ".." in Path(name).parts or not isinstance(want, dict):
            raise ArtifactError(folder, MANIFEST, f"has an invalid entry {name!r}")
        path = folder / name
        if not path.is_file():
            raise ArtifactError(folder, name, f"is missing (listed in {MANIFEST})")
        size = path.stat().st_size
        if size != want.get("size"):
            raise ArtifactError(folder, name, f"has {size:,} bytes where {MANIFEST} recorded {want.get('size')} "
                                "(truncated or changed after saving)")
        if _sha256(path) != want.get("sha256"):
            raise ArtifactError(folder, name, f"does not match the sha256 recorded in {MANIFEST} (changed after saving)")
    return True


# ---------------------------------------------------------------------------------- atomic save


@contextmanager
def saving(path: str | Path) -> Iterator[Path]:
    """Write an artifact atomically: yields an empty hidden sibling folder to write the files into;
    on success adds the manifest and puts the folder in place of ``path`` (see the module
    docstring); on any error removes it and leaves ``path`` as it was."""
    dest = Path(os.path.abspath(path))
    _check_replaceable(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(dest)
    tmp = dest.parent / f".{dest.name}.saving-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        write_manifest(tmp)
        _put_in_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_replaceable(dest: Path) -> None:
    """A save replaces the whole folder, so it may replace only a folder that holds nothing but a
    model: empty, a training folder's live timeline, a saved model whose manifest lists every file
    in it, or a model saved before manifests (its config.json names a featrix format). Anything
    else — a config.json of another program, a hidden .git, a file the manifest does not list — is
    refused, so that nothing a save did not write is ever deleted."""
    if not dest.exists():
        return
    if not dest.is_dir():
        raise FileExistsError(f"{dest} is a file: save the model to a folder path.")
    names = {p.name for p in dest.iterdir()}
    if names <= {LIVE_TIMELINE, "timeline.json"} or _is_saved_model(dest, names):
        return
    raise FileExistsError(f"{dest} holds files that are not a saved model ({', '.join(sorted(names)[:5])}): "
                          "save into a new or empty folder, so that nothing else is deleted.")


def _is_saved_model(dest: Path, names: set[str]) -> bool:
    try:
        if MANIFEST in names:
            doc = json.loads((dest / MANIFEST).read_text())
            listed = {name.split("/")[0] for name in doc.get("files", {})}
            return doc.get("format") == MANIFEST_FORMAT and names - {MANIFEST, LIVE_TIMELINE} <= listed
        if "config.json" in names:
            return str(json.loads((dest / "config.json").read_text()).get("format", "")).startswith("featrix-")
    except (OSError, ValueError, AttributeError):
        return False
    return False


def _put_in_place(tmp: Path, dest: Path) -> None:
    if not dest.exists():
        os.replace(tmp, dest)
        return
    if _exchange(tmp, dest):  # one atomic step: dest is the new artifact, tmp the old one
        shutil.rmtree(tmp, ignore_errors=True)
        return
    aside = dest.parent / f".{dest.name}.old-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.replace(dest, aside)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(aside, dest)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the OS or the file
    system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _remove_stale(dest: Path) -> None:
    """Folders a killed save of ``dest`` on this machine left beside it (their process is gone)."""
    for leftover in dest.parent.glob(f".{glob.escape(dest.name)}.*-{_HOST}-*-*"):
        kind, _, rest = leftover.name[len(dest.name) + 2:].partition("-")
        pid = rest.removeprefix(f"{_HOST}-").split("-")[0]
        if kind in ("saving", "old") and leftover.is_dir() and pid.isdigit() and not process_alive(pid):
            shutil.rmtree(leftover, ignore_errors=True)


def process_alive(pid: int | str) -> bool:
    """Whether process ``pid`` runs on this machine (another user's process counts as running); a pid
    that is not a number is no process. The one test of "was its process killed?" for leftover save
    folders, training folders and Dagster runs."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
