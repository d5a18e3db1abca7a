"""JSON columns (spec §5.5 "JSON Encoding (JsonEncoder): Nested JSON structures are encoded by
training a child Embedding Space on the flattened JSON. The parent ES stores the child ES mapping in
metadata, and a projection layer (Linear(child_d_model → d_model)) bridges them.").

``fit`` flattens each object with ``pandas.json_normalize`` (key paths like ``device.os``; lists
become their JSON text), keeps the ``MAX_KEYS`` most frequent paths, and trains a child
``EmbeddingSpace`` on that frame with a small time budget. ``transform`` flattens the same way
and returns the child's row embeddings (frozen: the child was trained on its own objective).
The child travels inside this codec's JSON state: its config/codec/timeline JSON as-is and its
safetensors weights base64-encoded — safe to load, never pickle.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from featrix_model.codecs.base import Codec, CodecContext

MAX_KEYS = 32
CHILD_FILES = ("config.json", "codecs.json", "timeline.json", "mutual_information.json")


def _parse(v):
    if isinstance(v, dict):
        return v
    if isinstance(v, list):
        return {"items": v}
    if isinstance(v, str) and v.strip()[:1] in "{[":
        try:
            return _parse(json.loads(v))
        except ValueError:
            return None
    return None


def flatten(values: pd.Series, keys: list[str] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """(flat frame with one column per key path, missing mask). Unparseable cells → all-null rows."""
    parsed = [_parse(v) for v in pd.Series(values).tolist()]
    missing = np.array([p is None for p in parsed])
    flat = pd.json_normalize([p or {} for p in parsed])
    for c in flat.columns:
        if flat[c].map(lambda x: isinstance(x, (list, dict))).any():
            flat[c] = flat[c].map(lambda x: json.dumps(x, sort_keys=True) if isinstance(x, (list, dict)) else x)
    if keys is not None:
        flat = flat.reindex(columns=keys)
    return flat.reset_index(drop=True), missing


class JsonCodec(Codec):
    semantic_type = "json"

    def __init__(self, name: str = "", child_budget_s: float = 20.0, max_keys: int = MAX_KEYS, seed: int = 0):
        super().__init__(name, child_budget_s=child_budget_s, max_keys=max_keys, seed=seed)
        self.child_budget_s, self.max_keys, self.seed = child_budget_s, max_keys, seed
        self.context = CodecContext()

    @classmethod
    def build(cls, name: str, semantic_type: str, context: CodecContext) -> "JsonCodec":
        return cls(name, seed=context.seed).bind(context)

    def bind(self, context: CodecContext) -> "JsonCodec":
        self.context = context
        return self

    def _child(self) -> tuple[type, dict]:
        """The class and column types of the child space, the same at fit and at load: the parent's
        types, with nested objects read as text (no recursion)."""
        c = self.context
        if c.space_class is None or not c.column_types:
            raise RuntimeError(f"JSON column '{self.name}': the codec was not given the space class and column "
                               "types that train its child space (CodecContext.space_class, column_types).")
        return c.space_class, {**c.column_types, "json": c.column_types["string"]}

    def fit(self, values: pd.Series) -> "JsonCodec":
        flat, missing = flatten(values)
        present = flat[~missing]
        counts = present.notna().sum().sort_values(ascending=False, kind="stable")
        self.keys_ = list(counts.index[: self.max_keys])
        if len(self.keys_) < 2:
            raise ValueError(self._too_few_keys())
        space_class, types = self._child()
        self.child_ = space_class.fit(present[self.keys_].reset_index(drop=True), time_budget_s=self.child_budget_s,
                                      seed=self.seed, progress=False, keep_training_rows=False, column_types=types)
        self.missing_share_ = float(missing.mean())
        return self

    def _too_few_keys(self) -> str:
        """What to do with a JSON column that gives a child space fewer than 2 columns."""
        c, lists = self.name, self.keys_ == ["items"]
        what = "its values are lists, not objects with keys" if lists else f"keys {self.keys_}"
        join = (f"join each list into one string before fitting: df['{c}'] = df['{c}'].map(lambda v: ', '.join("
                "map(str, v)) if isinstance(v, list) else v); or " if lists else "")
        return (f"JSON column '{c}' flattens to {len(self.keys_)} key(s) ({what}); a child space needs at least 2. "
                f"To encode it as text instead, {join}pass column_types={{**default_column_types(), 'json': "
                "default_column_types()['string']} (default_column_types is in featrix_model.columns; it reads "
                f"every JSON column of the table as text). To leave it out: exclude=('{c}',).")

    def transform(self, values: pd.Series) -> dict[str, torch.Tensor]:
        flat, missing = flatten(values, self.keys_)
        emb = self.child_.encode(flat) if len(flat) else np.zeros((0, self.child_.d_model), np.float32)
        emb[missing] = 0.0
        return {"child": torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32)),
                "missing": torch.from_numpy(missing)}

    def encoder_kwargs(self) -> dict:
        return {"child_dim": self.child_.d_model}

    def get_state(self) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            self.child_.save(tmp, figures=False)
            files = {f: json.loads((Path(tmp) / f).read_text()) for f in CHILD_FILES}
            weights = base64.b64encode((Path(tmp) / "model.safetensors").read_bytes()).decode("ascii")
        return {"keys": self.keys_, "missing_share": self.missing_share_, "child": files, "weights": weights}

    def set_state(self, state: dict) -> "JsonCodec":
        with tempfile.TemporaryDirectory() as tmp:
            for f, doc in state["child"].items():
                (Path(tmp) / f).write_text(json.dumps(doc))
            (Path(tmp) / "model.safetensors").write_bytes(base64.b64decode(state["weights"]))
            space_class, types = self._child()
            self.child_ = space_class.load(tmp, column_types=types)
        self.keys_, self.missing_share_ = state["keys"], state["missing_share"]
        return self

    def report(self) -> dict:
        return {"keys": self.keys_, "child_d_model": self.child_.d_model, "child_columns": self.child_.plan.columns,
                "unparseable_share": self.missing_share_}
