"""DomainEncoder, EmailEncoder, URLEncoder: spec §5.5 "Other Encoders" and §1.2.

Spec §5.5: "Domain names decompose into semantic and structural components: subdomain (BERT →
64-dim), domain main (BERT → 128-dim), TLD (categorical embedding over 21 TLDs + "other" → 32-dim),
TLD type (generic/country/new → 16-dim), is-free-email flag (8-dim), and optionally IP addresses
from DNS lookup (up to 4 IPs × 8 features → 34-dim). These concatenate into ~282 dimensions and
project through an MLP to d_model." ``DomainComponents`` is exactly those five components (248
dims); the DNS/IP component is left out because the library makes no network calls (offline).

* ``DomainEncoder`` - components → MLP (248 → d_model → d_model).
* ``EmailEncoder`` - §1.2 "Emails ... Decomposed into domain (company.com), TLD (.com), and
  free-email flag": the domain part through the same components (which include TLD and the
  free-email flag) + the local part's sentence embedding (Linear 384 → 64) → MLP → d_model.
* ``URLEncoder`` - "protocol (categorical), domain (DomainEncoder), path (BERT), endpoint (BERT on
  last path segment), and query params (BERT)": protocol embedding (8) + domain components (248) +
  path / endpoint / query projections (Linear 384 → 32 each) → fusion MLP → d_model.

Batch keys come from :mod:`featrix_model.codecs.web`. Parameters at d_model=64: the components are
74,688 (mostly the two spec-sized sentence projections, 384·64 + 384·128); DomainEncoder ≈ 94.8K,
EmailEncoder ≈ 123.6K, URLEncoder ≈ 138.6K.
"""

from __future__ import annotations

import torch
from torch import nn

from featrix_model.codecs.web import PROTOCOLS, TLD_TYPES, TOP_TLDS
from featrix_model.encoders.base import ColumnEncoder

SEMANTIC_DIM = 384
SUB_DIM, MAIN_DIM, TLD_DIM, TLD_TYPE_DIM, FREE_DIM = 64, 128, 32, 16, 8
LOCAL_DIM, PROTOCOL_DIM, URL_PART_DIM = 64, 8, 32


def _mlp(d_in: int, d_model: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_model, d_model))


class DomainComponents(nn.Module):
    """Spec §5.5 domain decomposition → (n, 248): subdomain 64, main 128, TLD 32, TLD type 16, free 8."""

    out_dim = SUB_DIM + MAIN_DIM + TLD_DIM + TLD_TYPE_DIM + FREE_DIM

    def __init__(self):
        super().__init__()
        self.sub = nn.Linear(SEMANTIC_DIM, SUB_DIM)
        self.main = nn.Linear(SEMANTIC_DIM, MAIN_DIM)
        self.tld = nn.Embedding(len(TOP_TLDS) + 1, TLD_DIM)  # 21 TLDs + "other" (index 0)
        self.tld_type = nn.Embedding(len(TLD_TYPES), TLD_TYPE_DIM)
        self.free = nn.Embedding(2, FREE_DIM)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        dt = self.sub.weight.dtype
        return torch.cat([self.sub(batch["dom_sub"].to(dt)), self.main(batch["dom_main"].to(dt)),
                          self.tld(batch["dom_tld"].long()), self.tld_type(batch["dom_tld_type"].long()),
                          self.free(batch["dom_free"].long())], dim=-1)


class DomainEncoder(ColumnEncoder):
    """Domain components → MLP → d_model."""

    def __init__(self, d_model: int, dropout: float = 0.1):
        super().__init__(d_model)
        self.components = DomainComponents()
        self.mlp = _mlp(DomainComponents.out_dim, d_model, dropout)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.mlp(self.components(batch))


class EmailEncoder(ColumnEncoder):
    """Domain components of the part after "@" + local-part embedding → MLP → d_model."""

    def __init__(self, d_model: int, dropout: float = 0.1):
        super().__init__(d_model)
        self.components = DomainComponents()
        self.local = nn.Linear(SEMANTIC_DIM, LOCAL_DIM)
        self.mlp = _mlp(DomainComponents.out_dim + LOCAL_DIM, d_model, dropout)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        local = self.local(batch["local"].to(self.local.weight.dtype))
        return self.mlp(torch.cat([self.components(batch), local], dim=-1))


class URLEncoder(ColumnEncoder):
    """Protocol + domain components + path / endpoint / query embeddings → fusion MLP → d_model."""

    def __init__(self, d_model: int, dropout: float = 0.1):
        super().__init__(d_model)
        self.protocol = nn.Embedding(len(PROTOCOLS), PROTOCOL_DIM)
        self.components = DomainComponents()
        self.path = nn.Linear(SEMANTIC_DIM, URL_PART_DIM)
        self.endpoint = nn.Linear(SEMANTIC_DIM, URL_PART_DIM)
        self.query = nn.Linear(SEMANTIC_DIM, URL_PART_DIM)
        self.mlp = _mlp(PROTOCOL_DIM + DomainComponents.out_dim + 3 * URL_PART_DIM, d_model, dropout)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        dt = self.path.weight.dtype
        parts = [self.protocol(batch["protocol"].long()), self.components(batch),
                 self.path(batch["path"].to(dt)), self.endpoint(batch["endpoint"].to(dt)),
                 self.query(batch["query"].to(dt))]
        return self.mlp(torch.cat(parts, dim=-1))


__all__ = ["DomainComponents", "DomainEncoder", "EmailEncoder", "URLEncoder"]
