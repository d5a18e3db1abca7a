"""Artifacts: ``config.json`` + ``model.safetensors`` (+ codec, timeline and MI JSON). Never pickle.

Loading rebuilds the model from the config, then loads the weights (Hugging Face's config/model
split); extra tensors (training embeddings) live in the same safetensors file under ``__``-prefixed
names.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from featrix_model.jsonable import to_jsonable

FORMAT = "featrix-embedding-space"
VERSION = 1


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(to_jsonable(obj), indent=1))


def read_json(path: Path):
    if not path.exists():
        raise FileNotFoundError(f"{path.name} is missing from {path.parent}: not a saved embedding space?")
    return json.loads(path.read_text())


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
    if not path.exists():
        raise FileNotFoundError(f"{path.name} is missing from {path.parent}: not a saved embedding space?")
    tensors = load_file(str(path))
    state = {k: v for k, v in tensors.items() if not k.startswith("__")}
    extra = {k[2:]: v for k, v in tensors.items() if k.startswith("__")}
    return state, extra
