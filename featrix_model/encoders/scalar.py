"""AdaptiveScalarEncoder: the 20-strategy dual-path scalar encoder of spec §5.1.

Spec §5.1 "Architecture: Dual-Path Encoding": "Continuous transforms (smooth, differentiable) and
binned transforms (discrete, embedding-based) have fundamentally different gradient properties.
Mixing them in a single MLP causes training instabilities. The encoder computes both paths in
parallel, then learns a gating function that decides how much to use each."

* Continuous path — the codec's 17 smooth features, each multiplied by its strategy's softmax
  weight × the number of active strategies (so the scale is ≈ 1 when weights are uniform, and a
  disabled strategy's features are exactly 0) → MLP → d_model.
* Binned path — "5 discrete embeddings: bucket, is_positive, is_negative, is_outlier, target_bin.
  Each → Embedding(d_model). Concatenate → 5×d_model. MLP → d_model"; each embedding is scaled by
  its strategy weight the same way.
* Mixer gate — "MLP([cont, bin]) → sigmoid → g; out = g×cont + (1-g)×bin" (one gate per row,
  initialised at g = 0.5; "Typical gate values land between 0.4–0.6").
* "Final Projection + LayerNorm".

Strategy weights are a learned logit per strategy of the §5.1 table (20 logits, table order; see
:data:`featrix_model.codecs.scalar.STRATEGIES`), initialised with the codec's column-statistics
bias. Feature → strategy mapping (one strategy per feature, except two pairs):
continuous linear→Linear, log→Log, robust→Robust, rank→Rank, zscore→Z-Score, minmax→Min-Max,
quantile→Quantile, yeojohnson→Yeo-Johnson, winsor→Winsorization, sigmoid→Sigmoid,
inverse→Inverse, clipped_log→Clipped Log, periodic_sin + periodic_cos→Periodic, poly_square +
poly_sqrt→Polynomial, frequency→Frequency; binned bucket→Bucket, is_positive→Is Positive,
is_negative→Is Negative, is_outlier→Is Outlier, target_bin→Target-Guided Binning.

Pruning (§5.1 "Strategy Pruning and Initialization"): "Every 5 epochs, strategies contributing less
than 5% of the average weight are pruned (disabled). Pruning stops when 3 strategies remain." A
disabled strategy's logit is masked to −inf through the ``active_mask`` buffer, which is part of
``state_dict`` so a reloaded encoder is identical.

Sizes: hidden widths follow d_model (continuous MLP d_model, binned MLP d_model/2, gate d_model/4)
so the encoder stays in the spec's "15-30K" parameter range at d_model = 64 (≈ 27K).
"""

from __future__ import annotations

import torch
from torch import nn

from featrix_model.codecs.scalar import BINNED_STRATEGY, CONTINUOUS_STRATEGY, STRATEGIES, STRATEGY_LABELS
from featrix_model.encoders.base import ColumnEncoder

PRUNE_EVERY = 5
PRUNE_FRACTION = 0.05
MIN_ACTIVE = 3


def _mlp(d_in: int, hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d_out))


class AdaptiveScalarEncoder(ColumnEncoder):
    """Codec tensors ``continuous`` (n, 17) float, ``binned`` (n, 5) long, ``missing`` (n,) bool →
    ``(full (n, d_model), short (n, 3))``. ``name`` (the column; ``ScalarCodec.encoder_kwargs``
    passes it) only labels the pruning notes."""

    def __init__(self, d_model: int, n_continuous: int = 17, bin_sizes: list[int] | None = None,
                 strategy_bias: list[float] | None = None, dropout: float = 0.1, name: str = ""):
        super().__init__(d_model)
        if n_continuous != len(CONTINUOUS_STRATEGY):
            raise ValueError(f"AdaptiveScalarEncoder expects {len(CONTINUOUS_STRATEGY)} continuous features "
                             f"(one per continuous strategy), got {n_continuous}")
        bin_sizes = list(bin_sizes) if bin_sizes is not None else [16, 2, 2, 2, 4]
        if len(bin_sizes) != len(BINNED_STRATEGY):
            raise ValueError(f"expected {len(BINNED_STRATEGY)} bin sizes, got {len(bin_sizes)}")
        self.name = name
        self.n_continuous = n_continuous
        self.bin_sizes = bin_sizes
        bias = torch.zeros(len(STRATEGIES)) if strategy_bias is None else \
            torch.as_tensor(strategy_bias, dtype=torch.float32)
        if bias.shape != (len(STRATEGIES),):
            raise ValueError(f"strategy_bias must hold {len(STRATEGIES)} floats (one per scalar strategy)")
        self.strategy_logits = nn.Parameter(bias.clone())
        self.register_buffer("active_mask", torch.ones(len(STRATEGIES), dtype=torch.bool))
        self.register_buffer("cont_strategy", torch.tensor(CONTINUOUS_STRATEGY), persistent=False)
        self.register_buffer("bin_strategy", torch.tensor(BINNED_STRATEGY), persistent=False)
        self.register_buffer("bin_max", torch.tensor(bin_sizes) - 1, persistent=False)
        self.continuous_mlp = _mlp(n_continuous, d_model, d_model, dropout)
        self.embeddings = nn.ModuleList(nn.Embedding(max(1, s), d_model) for s in bin_sizes)
        for emb in self.embeddings:
            nn.init.normal_(emb.weight, std=d_model**-0.5)
        self.binned_mlp = _mlp(len(bin_sizes) * d_model, max(16, d_model // 2), d_model, dropout)
        self.gate = nn.Sequential(nn.Linear(2 * d_model, max(8, d_model // 4)), nn.GELU(),
                                  nn.Linear(max(8, d_model // 4), 1))
        nn.init.zeros_(self.gate[-1].weight)  # start at g = 0.5: both paths used from step one
        nn.init.zeros_(self.gate[-1].bias)
        self.out = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model)
        self._last_gate: torch.Tensor | None = None

    # ------------------------------------------------------------------ forward

    def strategy_weights(self) -> torch.Tensor:
        """Softmax over the active strategies (disabled ones are exactly 0)."""
        logits = self.strategy_logits.masked_fill(~self.active_mask, float("-inf"))
        return torch.softmax(logits, dim=0)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        scale = self.strategy_weights() * self.active_mask.sum()
        cont = batch["continuous"].to(self.strategy_logits.dtype) * scale[self.cont_strategy]
        h_cont = self.continuous_mlp(cont)
        idx = torch.minimum(batch["binned"].long().clamp_min(0), self.bin_max)
        bin_scale = scale[self.bin_strategy]
        embs = [emb(idx[:, j]) * bin_scale[j] for j, emb in enumerate(self.embeddings)]
        h_bin = self.binned_mlp(torch.cat(embs, dim=-1))
        g = torch.sigmoid(self.gate(torch.cat([h_cont, h_bin], dim=-1)))
        present = ~batch["missing"].to(g.device)
        # a diagnostic, written past nn.Module.__setattr__ (its Parameter check costs ~0.5 ms a call)
        self.__dict__["_last_gate"] = g.detach().squeeze(-1)[present].mean() if present.any() else g.detach().mean()
        return self.norm(self.out(g * h_cont + (1 - g) * h_bin))

    # ------------------------------------------------------------------ pruning / report

    def on_epoch_end(self, epoch: int, progress: float) -> list[str]:
        """Prune after every ``PRUNE_EVERY``-th epoch. ``epoch`` counts completed epochs from 1 (the
        trainer's convention), so pruning runs at epochs 5, 10, 15, …: disable active strategies
        whose weight is < 5% of the average active weight, lowest first, never leaving fewer than
        ``MIN_ACTIVE`` (3) active."""
        if epoch <= 0 or epoch % PRUNE_EVERY:
            return []
        with torch.no_grad():
            w = self.strategy_weights()
            n_active = int(self.active_mask.sum())
            threshold = PRUNE_FRACTION * (1.0 / n_active)  # active weights sum to 1
            candidates = [i for i in torch.argsort(w).tolist() if self.active_mask[i] and w[i] < threshold]
            pruned = candidates[: max(0, n_active - MIN_ACTIVE)]
            if not pruned:
                return []
            self.active_mask[pruned] = False
        names = ", ".join(STRATEGY_LABELS[i] for i in pruned)
        pct = ", ".join(f"{float(w[i]):.1%}" for i in pruned)
        prefix = f"{self.name}: " if self.name else ""
        return [f"{prefix}pruned {names} (weight{'s' if len(pruned) > 1 else ''} {pct}); "
                f"{int(self.active_mask.sum())} strategies active"]

    def report(self) -> dict:
        w = self.strategy_weights().detach().cpu()
        active = [STRATEGY_LABELS[i] for i in range(len(STRATEGIES)) if bool(self.active_mask[i])]
        return {"strategy_weights": {STRATEGY_LABELS[i]: round(float(w[i]), 6) for i in range(len(STRATEGIES))},
                "active_strategies": active,
                "mean_gate_continuous": None if self._last_gate is None else float(self._last_gate)}
