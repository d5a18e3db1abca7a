"""Load any saved space from its folder: ``load_space(path)``.

The folder's ``config.json`` names the kind of space it holds (``"table"`` or ``"relational"``), as
Hugging Face's ``model_type`` names a model class, so callers (predictors, the pipeline, a notebook)
never need to know which class wrote it, and the base class never needs to know its subclasses.
"""

from __future__ import annotations

from pathlib import Path

from featrix_model import io
from featrix_model.relational import RelationalSpace
from featrix_model.space import EmbeddingSpace

SPACE_CLASSES = {cls.kind: cls for cls in (EmbeddingSpace, RelationalSpace)}


def load_space(path: str | Path, *, tables: dict | None = None, column_types: dict | None = None):
    """The space saved in ``path``. ``tables`` ({name: DataFrame}) attaches the child tables a
    relational space reads its parents' children from; a table space needs none."""
    path = Path(path)
    kind = io.space_kind(path, io.read_json(path / "config.json"))
    if kind not in SPACE_CLASSES:
        raise ValueError(f"{path} holds a space of kind {kind!r}, which this installation cannot load "
                         f"(known kinds: {sorted(SPACE_CLASSES)}).")
    return SPACE_CLASSES[kind].load(path, column_types=column_types, tables=tables)
