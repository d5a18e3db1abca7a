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


def load_space(path: str | Path, *, tables: dict | None = None, column_types: dict | None = None,
               verify: bool = True):
    """The space saved in ``path``. ``tables`` ({name: DataFrame}) attaches the child tables a
    relational space reads its parents' children from; a table space needs none. The folder is
    checked against its manifest first (``verify=False``: the caller checked an enclosing one);
    anything wrong with it is an ``io.ArtifactError``."""
    path = Path(path)
    kind = io.space_kind(path, io.read_json(path / "config.json"))
    if kind not in SPACE_CLASSES:
        raise io.ArtifactError(path, "config.json", f"names a space of kind {kind!r}, which this installation "
                               f"cannot load (known kinds: {sorted(SPACE_CLASSES)})",
                               "load it with the version of featrix_model that saved it")
    return SPACE_CLASSES[kind].load(path, column_types=column_types, tables=tables, verify=verify)
