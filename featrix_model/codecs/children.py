"""ChildrenCodec: a parent row's child rows, as child-space embeddings (spec §1.3 "Learn join
relationships ... aggregates transaction patterns up to the customer level").

The column's values are ``(child positions, child count)`` per parent row, made by
``RelationalSpace``: positions index the *bank* — the child table's row embeddings from its own
embedding space, an array or ``children.LazyEmbeddings`` that encodes a row when first taken —
attached with ``attach`` (the bank is data, not model state: it is rebuilt from the child table). ``transform`` gathers at most ``cap`` child embeddings per parent,
padded, with a mask; ``count`` is the number of children before capping. A parent with no children
is *missing*, so the encoder's learned replacement embedding stands for "no children".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from featrix_model.codecs.base import Codec


class ChildrenCodec(Codec):
    semantic_type = "children"

    def __init__(self, name: str = "", cap: int = 64, d_child: int = 64, **params):
        super().__init__(name, cap=int(cap), d_child=int(d_child), **params)
        self.cap, self.d_child = int(cap), int(d_child)
        self.bank_: np.ndarray | None = None

    def attach(self, bank) -> "ChildrenCodec":
        """(n_child_rows, d_child) child-row embeddings that the positions in the values index: an array,
        or an object whose ``take(positions)`` gives them (``children.LazyEmbeddings``)."""
        if bank.ndim != 2 or bank.shape[1] != self.d_child:
            raise ValueError(f"children of '{self.name}': expected (n, {self.d_child}) child embeddings, got {bank.shape}")
        self.bank_ = np.ascontiguousarray(bank, dtype=np.float32) if isinstance(bank, np.ndarray) else bank
        return self

    def fit(self, values: pd.Series) -> "ChildrenCodec":
        counts = np.array([0 if v is None else v[1] for v in values], dtype=float)
        logs = np.log1p(counts)
        self.count_mean_, self.count_std_ = float(logs.mean()), float(logs.std() or 1.0)
        self.median_children_ = float(np.median(counts)) if len(counts) else 0.0
        return self

    def transform(self, values: pd.Series) -> dict[str, torch.Tensor]:
        if self.bank_ is None:
            raise RuntimeError(f"children column '{self.name}' has no child embeddings attached: the relational "
                               "space needs its child tables (RelationalSpace.attach).")
        n = len(values)
        idx = np.full((n, self.cap), -1, dtype=np.int64)
        counts = np.zeros(n)
        for i, v in enumerate(values):
            if v is None:
                continue
            sel = np.asarray(v[0], dtype=np.int64)  # RelationalSpace already kept at most ``cap``
            idx[i, : len(sel)] = sel
            counts[i] = v[1]
        mask = idx >= 0
        where = np.where(mask, idx, 0)
        rows = self.bank_[where] if isinstance(self.bank_, np.ndarray) else self.bank_.take(where)
        children = rows * mask[..., None]
        return {"children": torch.from_numpy(children.astype(np.float32)), "mask": torch.from_numpy(mask),
                "log_count": torch.from_numpy(((np.log1p(counts) - self.count_mean_) / self.count_std_).astype(np.float32)),
                "missing": torch.from_numpy(counts == 0)}

    def get_state(self) -> dict:
        return {"count_mean": self.count_mean_, "count_std": self.count_std_, "median_children": self.median_children_}

    def set_state(self, state: dict) -> "ChildrenCodec":
        self.count_mean_, self.count_std_ = state["count_mean"], state["count_std"]
        self.median_children_ = state["median_children"]
        return self

    def encoder_kwargs(self) -> dict:
        return {"d_child": self.d_child}

    def report(self) -> dict:
        return {"cap": self.cap, "median_children": round(self.median_children_, 1), "child_embedding_dim": self.d_child}
