"""Per-epoch checkpoints of a space's training, and resuming from them (spec §19).

At the end of every epoch the trainer writes ``epoch-NNNNN/`` into the checkpoint folder: the
network's weights and buffers, the optimizer's state, both random generators, the training and
validation rows, the best state so far, and as JSON the timeline, the intervention ladder, the step
count and the run's fingerprint. Each is written whole under a temporary name with a manifest and
renamed into place (``featrix_model.io.saving``); the two newest are kept. A fit given the same
folder again resumes after the newest checkpoint whose manifest checks out (a damaged one is
skipped with a warning) and whose fingerprint — the configuration, the network's shape and the
training data — matches, and ends with exactly the weights an uninterrupted fit would have.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from featrix_model import io

KEEP = 2  # checkpoints kept: the newest and the one before (a damaged newest falls back to it)
FORMAT = "featrix-training-checkpoint"
VERSION = 2  # raised when what a checkpoint holds changes: older ones are then not resumed


def fingerprint(cfg_fields: dict, net: torch.nn.Module, data, extra: dict | None = None) -> str:
    """What a checkpoint must match to be resumed: the checkpoint format, the training configuration
    (minus its reasons), ``extra`` (e.g. whether a movie is recorded), the names and shapes of the
    network's tensors, and the bytes of the training data (hashed in place, without a copy)."""
    h = hashlib.sha256(json.dumps({"format": FORMAT, "version": VERSION, "cfg": cfg_fields, "extra": extra or {}},
                                  sort_keys=True, default=str).encode())
    for name, t in net.state_dict().items():
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())

    def walk(prefix: str, value) -> None:
        if isinstance(value, torch.Tensor):
            h.update(prefix.encode())
            h.update(value.detach().cpu().contiguous().numpy().data)
        elif isinstance(value, dict):
            for k in sorted(value):
                walk(f"{prefix}/{k}", value[k])
    walk("", data)
    return h.hexdigest()


def save(folder: Path, epoch: int, tensors: dict[str, torch.Tensor], state: dict) -> None:
    """Write checkpoint ``epoch`` atomically and drop all but the newest ``KEEP``."""
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"epoch-{epoch:05d}"
    shutil.rmtree(dest, ignore_errors=True)  # a damaged one a resume skipped: the one before it stays meanwhile
    with io.saving(dest) as tmp:
        save_file({k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()}, str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps({"format": FORMAT, "epoch": epoch, **state}, default=float))
    for old in sorted(ours(folder))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)


def ours(folder: Path) -> list[Path]:
    """The checkpoint folders in ``folder`` (``epoch-*`` holding a checkpoint's files), nothing else."""
    return [p for p in folder.glob("epoch-*") if p.is_dir() and ((p / "state.json").exists() or
                                                                   (p / io.MANIFEST).exists())] if folder.is_dir() else []


def clear(folder: Path) -> None:
    """Remove every checkpoint in ``folder`` (another run's, or damaged ones), before a fresh start
    writes its own: otherwise their later epochs would outrank the new run's and be pruned into."""
    for path in ours(folder):
        shutil.rmtree(path, ignore_errors=True)


def latest(folder: Path, expected: str, warn: Callable[[str], None]) -> tuple[dict[str, torch.Tensor], dict] | None:
    """(tensors, state) of the newest sound checkpoint with the ``expected`` fingerprint, or None."""
    if not folder.is_dir():
        return None
    for path in sorted(ours(folder), reverse=True):
        try:
            if not io.verify(path):
                raise io.ArtifactError(path, io.MANIFEST, "is missing")
            state = json.loads((path / "state.json").read_text())
            if state.get("format") != FORMAT:
                raise io.ArtifactError(path, "state.json", "is not a training checkpoint")
            if state.get("fingerprint") != expected:
                warn(f"[WARN] checkpoint {path} is of another training run (different data, settings or network): "
                     "training starts from the beginning")
                return None
            return load_file(str(path / "state.safetensors")), state
        except (io.ArtifactError, OSError, ValueError) as e:
            warn(f"[WARN] checkpoint {path} is damaged ({e}); trying the one before it")
    return None


def prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as flat tensors (``opt.<param>.<name>``) and JSON (groups, other values)."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, entry in sd["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{pid}.{name}"] = value
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], saved: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in prefixed(tensors, "opt.").items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for key, value in saved["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in saved["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})
