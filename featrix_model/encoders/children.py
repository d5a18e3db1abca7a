"""ChildrenEncoder: attention pooling of a parent's child-row embeddings with learned queries
(spec §1.3 step 2 "a join embedding that aggregates transaction patterns up to the customer level";
§19 "learned aggregations instead of hand-crafted SQL GROUP BY clauses").

Each child embedding (from the child table's space) goes through a small MLP into d_model. Then
``n_queries`` learned query vectors each attend over the parent's children (softmax over the
children present, scaled dot product) — one query can learn "the typical child", another "the
unusual ones" — and a plain masked mean is kept beside them as a stable path. The pooled vectors, the
mean and an embedding of log(child count) are projected to the column's d_model token. Parents
without children get the base class's learned replacement embedding ("no children").
"""

from __future__ import annotations

import torch
from torch import nn

from featrix_model.encoders.base import ColumnEncoder


class ChildrenEncoder(ColumnEncoder):
    def __init__(self, d_model: int, d_child: int, n_queries: int = 4, dropout: float = 0.1):
        super().__init__(d_model)
        self.n_queries = int(n_queries)
        self.inp = nn.Sequential(nn.LayerNorm(d_child), nn.Linear(d_child, d_model), nn.GELU(),
                                 nn.Linear(d_model, d_model))
        self.queries = nn.Parameter(torch.randn(self.n_queries, d_model) / d_model**0.5)
        self.count = nn.Linear(1, d_model)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear((self.n_queries + 2) * d_model, d_model)
        self.last_attention_entropy: float | None = None

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.inp(batch["children"])  # (n, cap, d)
        mask = batch["mask"]
        scores = torch.einsum("ncd,qd->nqc", h, self.queries) / h.shape[-1] ** 0.5
        scores = scores.masked_fill(~mask.unsqueeze(1), -1e9)  # finite: a parent with no children stays NaN-free
        att = torch.softmax(scores, dim=-1)
        pooled = torch.einsum("nqc,ncd->nqd", att, h).flatten(1)
        m = mask.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        count = self.count(batch["log_count"].unsqueeze(-1))
        if not self.training:
            with torch.no_grad():
                ent = -(att * att.clamp(min=1e-12).log()).sum(-1).mean()
                self.last_attention_entropy = float(ent)
        return self.out(self.dropout(torch.cat([pooled, mean, count], dim=1)))

    def report(self) -> dict:
        return {"pooling": f"attention with {self.n_queries} learned queries + masked mean + log count",
                "attention_entropy_nats": None if self.last_attention_entropy is None
                else round(self.last_attention_entropy, 3)}
