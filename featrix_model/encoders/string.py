"""StringEncoder: spec §5.2 "Adaptive Compression Strategies" over sentence embeddings.

"The encoder learns how much compression to apply to BERT embeddings across 7 strategies":

* ZERO - "Random/uninformative strings (UUIDs, hashes)", output dim 0: the column carries no
  information, so ZERO contributes one constant vector ``c`` for every row (a learned direction,
  centred and scaled to RMS 1, so ``|c| = √d_model`` whatever training does to the parameter).
* AGGRESSIVE - MLP 384 → d_model/4 → d_model/4 ("Heavy MLP compression (low entropy text)").
* MODERATE - MLP 384 → d_model/2 → d_model/2 ("Balanced MLP compression").
* STANDARD - Linear 384 → d_model ("Maximum semantic capacity").
* DELIM_ATTN - "splitting on the delimiter, BERT-encoding each part, adding position embeddings
  (order matters), running self-attention across parts, and using attention pooling with a learned
  query": the codec's ``parts`` (n, 8, 384) → Linear → + position embedding → one self-attention
  layer → pooling with a learned query → Linear → d_model. Only built when the codec recommends it.
* RADIX - "chunks the string into character positions, applies character embeddings, adds strong
  positional embeddings ..., runs 2-layer self-attention, and pools with attention": the codec's
  ``chars`` (n, W) → char embedding + positional embedding (initialised 2× larger, so position
  dominates at the start) → 2 self-attention layers → learned-query pooling → Linear → d_model.
  Only built when recommended.
* DELIMITER (legacy averaging of parts) is omitted: DELIM_ATTN supersedes it.

The attention strategies work at width ``d_attn = max(16, d_model // 2)`` to keep parameters modest.

Output widths are the spec table's, not just bottleneck widths: AGGRESSIVE's last layer emits
d_model/4 numbers and MODERATE's d_model/2, zero-padded into the first dimensions of the d_model
token, so every AGGRESSIVE token lies in one fixed d_model/4-dimensional subspace (its information
capacity really is d_model/4). A d_model-wide last layer after a narrow bottleneck would still span
an affine d_model/4 space plus its bias offset and mix it into all d_model dimensions; padding
makes the compression a property of the output, which the joint encoder's in-converter sees.

Mixture: output = w_ZERO · c + P(Σ_s w_s · ŷ_s) over the active strategies, softmax weights w, where
ŷ_s is strategy s's (padded) output scaled row-wise to L2 norm √d_model (the norm of c) and P
removes the component along c while ZERO is active (one direction of d_model, so the constant part
of every token is exactly w_ZERO · c and the relative variation falls monotonically in w_ZERO).
Why: the joint encoder applies ``LayerNorm(in_converter(x) + x)`` to each column token, which is
scale-invariant, so a ZERO that added zeros only scaled the other strategies down and LayerNorm
scaled them back up (the row-to-row variation survived almost whole). With a fixed-norm constant
and fixed-norm strategy outputs, the row-dependent part is at most (1 − w_ZERO)·2√d_model against
a constant of w_ZERO·√d_model, so the column's row-to-row variation shrinks with 1 − w_ZERO in a
way no rescaling undoes (c is centred, so LayerNorm's mean subtraction cannot remove it either);
at w_ZERO = 1 every present row gets exactly c. Missing values still get the learned replacement
embedding (``ColumnEncoder``), so missingness stays visible.

"Strategy weights are learned via softmax, and after warmup, only the top 2 strategies survive
pruning." Logits start at 0, +2 for each strategy the codec recommended (so ZERO is favoured for
ID-like columns). At the first ``on_epoch_end`` with progress >= 0.15 (the end of the spec's 15% LR
warmup, §10) all but the 2 highest-weighted strategies are pruned; the ``active`` buffer records
it, so a state_dict reload gives an identical encoder. Pruned strategies are not computed.

Parameters at d_model=64: ZERO 64, AGGRESSIVE 6,432, MODERATE 13,376, STANDARD 24,640 (44.6K with
the missing embedding for plain text), + DELIM_ATTN 23,264, + RADIX 19,232 + 32·(n_chars + 1 + W)
(20,160 for "ABC-12345" codes: 19 characters, W = 9).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from featrix_model.encoders.base import ColumnEncoder

SEMANTIC_DIM = 384
MAX_PARTS = 8
ORDER = ("ZERO", "DELIM_ATTN", "RADIX", "AGGRESSIVE", "MODERATE", "STANDARD")
RECOMMENDED_BIAS = 2.0
WARMUP = 0.15
KEEP = 2
WIDTH_DIVISOR = {"AGGRESSIVE": 4, "MODERATE": 2}  # spec table: output dims d_model/4, d_model/2


def _unit_rms(y: torch.Tensor) -> torch.Tensor:
    """Scale each row of (n, d) to RMS 1 over its last dimension, i.e. L2 norm √d (0 stays 0)."""
    return F.normalize(y, dim=-1, eps=1e-12) * y.shape[-1] ** 0.5


def _attention_pool(h: torch.Tensor, query: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax(h·q/√d) pooling over positions; ``valid`` (n, L) marks real positions."""
    scores = (h @ query) / h.shape[-1] ** 0.5
    if valid is not None:
        scores = scores.masked_fill(~valid, float("-inf"))
    return (torch.softmax(scores, dim=-1).unsqueeze(-1) * h).sum(dim=1)


def _heads(d: int) -> int:
    return 4 if d % 4 == 0 else 2 if d % 2 == 0 else 1


class DelimiterAttention(nn.Module):
    """Items of a delimited string: projection + positions + 1 self-attention layer + pooling."""

    def __init__(self, d_model: int, d_attn: int, dropout: float):
        super().__init__()
        self.proj = nn.Linear(SEMANTIC_DIM, d_attn)
        self.pos = nn.Embedding(MAX_PARTS, d_attn)
        self.attn = nn.TransformerEncoderLayer(d_attn, _heads(d_attn), 2 * d_attn, dropout, batch_first=True)
        self.query = nn.Parameter(torch.randn(d_attn) / d_attn ** 0.5)
        self.out = nn.Linear(d_attn, d_model)

    def forward(self, parts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        valid = mask.clone()
        valid[:, 0] |= ~valid.any(dim=1)  # rows without items (missing) attend to slot 0, never NaN
        h = self.proj(parts) + self.pos.weight[: parts.shape[1]]
        h = self.attn(h, src_key_padding_mask=~valid)
        return self.out(_attention_pool(h, self.query, valid))


class RadixAttention(nn.Module):
    """Fixed-width strings: char + strong positional embeddings, 2 self-attention layers, pooling."""

    def __init__(self, d_model: int, d_attn: int, n_chars: int, width: int, dropout: float):
        super().__init__()
        self.char = nn.Embedding(n_chars + 1, d_attn)
        self.pos = nn.Embedding(width, d_attn)
        nn.init.normal_(self.char.weight, std=0.5)
        nn.init.normal_(self.pos.weight, std=1.0)
        layer = nn.TransformerEncoderLayer(d_attn, _heads(d_attn), 2 * d_attn, dropout, batch_first=True)
        self.layers = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.query = nn.Parameter(torch.randn(d_attn) / d_attn ** 0.5)
        self.out = nn.Linear(d_attn, d_model)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        h = self.char(chars.long()) + self.pos.weight[: chars.shape[1]]
        return self.out(_attention_pool(self.layers(h), self.query))


class StringEncoder(ColumnEncoder):
    """Softmax-weighted mixture of the §5.2 compression strategies (module docstring)."""

    def __init__(self, d_model: int, recommended: list[str] | tuple[str, ...] = ("STANDARD",),
                 delimiter: str | None = None, width: int = 0, n_chars: int = 0, dropout: float = 0.1):
        super().__init__(d_model)
        self.recommended = [s for s in recommended if s in ORDER]
        names = [s for s in ORDER if s not in ("DELIM_ATTN", "RADIX") or s in self.recommended]
        if width <= 0 and "RADIX" in names:
            names.remove("RADIX")
        self.strategy_names = names
        self.delimiter, self.width, self.n_chars = delimiter, int(width), int(n_chars)
        d_attn = max(16, d_model // 2)
        self.strategies = nn.ModuleDict()
        for name, div in WIDTH_DIVISOR.items():
            k = max(1, d_model // div)
            self.strategies[name] = nn.Sequential(nn.Linear(SEMANTIC_DIM, max(4, k)), nn.GELU(),
                                                  nn.Dropout(dropout), nn.Linear(max(4, k), k))
        self.strategies["STANDARD"] = nn.Linear(SEMANTIC_DIM, d_model)
        if "DELIM_ATTN" in names:
            self.strategies["DELIM_ATTN"] = DelimiterAttention(d_model, d_attn, dropout)
        if "RADIX" in names:
            self.strategies["RADIX"] = RadixAttention(d_model, d_attn, self.n_chars, self.width, dropout)
        self.zero_direction = nn.Parameter(torch.randn(d_model))
        bias = [RECOMMENDED_BIAS if s in self.recommended else 0.0 for s in names]
        self.logits = nn.Parameter(torch.tensor(bias, dtype=torch.float32))
        self.register_buffer("active", torch.ones(len(names), dtype=torch.bool))

    def zero_vector(self) -> torch.Tensor:
        """ZERO's constant: the learned direction centred and scaled to norm √d_model."""
        v = self.zero_direction - self.zero_direction.mean()
        return _unit_rms(v)

    def weights(self) -> torch.Tensor:
        """Softmax strategy weights; pruned strategies get exactly 0."""
        return torch.softmax(self.logits.masked_fill(~self.active, float("-inf")), dim=0)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        emb = batch["embedding"].to(self.logits.dtype)
        w = self.weights()
        out = emb.new_zeros(emb.shape[0], self.d_model)
        for i, (name, on) in enumerate(zip(self.strategy_names, self.active.tolist())):
            if not on or name == "ZERO":
                continue
            if name == "DELIM_ATTN":
                y = self.strategies[name](batch["parts"].to(emb.dtype), batch["parts_mask"].bool())
            elif name == "RADIX":
                y = self.strategies[name](batch["chars"])
            else:
                y = self.strategies[name](emb)
            y = F.pad(y, (0, self.d_model - y.shape[-1]))  # narrow strategies: first k dims only
            out = out + w[i] * _unit_rms(y)
        z = self.strategy_names.index("ZERO")
        if self.active[z]:  # a constant, the rest kept orthogonal to it (module docstring)
            c = self.zero_vector().to(emb.dtype)
            out = out - (out @ c).unsqueeze(-1) * c / self.d_model + w[z] * c
        return out

    def on_epoch_end(self, epoch: int, progress: float) -> list[str]:
        """After warmup (progress >= 0.15) keep only the top-2 strategies (spec §5.2)."""
        if progress < WARMUP or int(self.active.sum()) <= KEEP:
            return []
        w = self.weights().detach().tolist()
        ranked = sorted((i for i in range(len(w)) if self.active[i]), key=lambda i: (-w[i], i))
        keep = set(ranked[:KEEP])
        self.active.copy_(torch.tensor([i in keep for i in range(len(w))]))
        kept = ", ".join(f"{self.strategy_names[i]} ({w[i]:.0%})" for i in ranked[:KEEP])
        dropped = ", ".join(self.strategy_names[i] for i in ranked[KEEP:])
        return [f"string strategies pruned after warmup (epoch {epoch}): kept {kept}; pruned {dropped}"]

    def report(self) -> dict:
        w = self.weights().detach().tolist()
        return {"strategy_weights": {s: round(x, 4) for s, x in zip(self.strategy_names, w)},
                "active": [s for s, on in zip(self.strategy_names, self.active.tolist()) if on],
                "recommended": list(self.recommended), "pruned": bool(int(self.active.sum()) < len(w))}


__all__ = ["StringEncoder", "DelimiterAttention", "RadixAttention"]
