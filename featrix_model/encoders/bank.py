"""Same-type column encoders evaluated as one stacked forward, for encoding (eval mode, no autograd).

A 20-column table runs about 140 small ``linear`` calls per forward through its column encoders, one
Python-level module call each; for a single row that overhead, not arithmetic, is the cost (profiled:
~5.5 ms of a 64-row forward over 19 columns, most of it in the 10 scalar and 7 set encoders). Here
the K encoders of one kind share one ``baddbmm`` per layer: their weights are stacked once into
(K, in, out) tensors and the K columns' inputs into (K, n, in).

The joint encoder's per-column in-converters are stacked the same way (``stacked_converters``).

Only :class:`AdaptiveScalarEncoder` and :class:`SetEncoder` are stacked (the kinds a table
has many of); any other encoder, a kind with a single column, or a training-mode network goes through
the encoders one by one. The stacked arithmetic is the encoders' own, in eval form (dropout is the
identity, the semantic floor caps the gate, unseen members use the semantic path); its floats differ
from the one-by-one path in the last bits, so one path serves every encoding forward
(:mod:`featrix_model.encoding`) and the trainer never uses it.

The stacked weights are rebuilt whenever any parameter or buffer of the encoders changed in place or
was replaced (fine-tuning, pruning, a reload): the key is every tensor's identity and version counter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from featrix_model.codecs.base import per_row
from featrix_model.encoders.scalar import AdaptiveScalarEncoder
from featrix_model.encoders.set import SetEncoder


def _stack_linear(layers: list[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, 1, out) biases and (K, in, out) transposed weights of K same-shape linears."""
    return (torch.stack([l.bias for l in layers]).unsqueeze(1).contiguous(),
            torch.stack([l.weight.t() for l in layers]).contiguous())


def _lin(stacked: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """K linears at once: x (K, n, in) → (K, n, out)."""
    return torch.baddbmm(stacked[0], x, stacked[1])


def _tables(embeddings: list[nn.Embedding]) -> tuple[torch.Tensor, torch.Tensor]:
    """One table of all rows of ``embeddings`` and each one's first row in it."""
    sizes = torch.tensor([e.weight.shape[0] for e in embeddings])
    return torch.cat([e.weight for e in embeddings]), torch.cumsum(sizes, 0) - sizes


class _ScalarStack:
    def __init__(self, encs: list[AdaptiveScalarEncoder]):
        self.scale = torch.stack([e.strategy_weights() * e.active_mask.sum() for e in encs])  # (K, 20)
        self.cont_strategy, self.bin_strategy = encs[0].cont_strategy, encs[0].bin_strategy
        self.bin_max = torch.stack([e.bin_max for e in encs])  # (K, 5)
        self.table, offsets = _tables([emb for e in encs for emb in e.embeddings])
        self.offsets = offsets.view(len(encs), -1)  # (K, 5)
        self.c1, self.c2 = _stack_linear([e.continuous_mlp[0] for e in encs]), _stack_linear([e.continuous_mlp[3] for e in encs])
        self.b1, self.b2 = _stack_linear([e.binned_mlp[0] for e in encs]), _stack_linear([e.binned_mlp[3] for e in encs])
        self.g1, self.g2 = _stack_linear([e.gate[0] for e in encs]), _stack_linear([e.gate[2] for e in encs])
        self.out = _stack_linear([e.out for e in encs])
        self.norm_w = torch.stack([e.norm.weight for e in encs]).unsqueeze(1)
        self.norm_b = torch.stack([e.norm.bias for e in encs]).unsqueeze(1)
        self.eps = encs[0].norm.eps

    def __call__(self, batches: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        K, d = len(batches), self.table.shape[1]
        cont = torch.stack([b["continuous"] for b in batches]).to(self.table.dtype) * self.scale[:, self.cont_strategy].unsqueeze(1)
        h_cont = _lin(self.c2, F.gelu(_lin(self.c1, cont)))
        binned = torch.stack([b["binned"] for b in batches]).long().clamp_min(0)  # (K, n, 5)
        idx = torch.minimum(binned, self.bin_max.unsqueeze(1)) + self.offsets.unsqueeze(1)
        embs = self.table[idx] * self.scale[:, self.bin_strategy][:, None, :, None]  # (K, n, 5, d)
        h_bin = _lin(self.b2, F.gelu(_lin(self.b1, embs.reshape(K, -1, 5 * d))))
        g = torch.sigmoid(_lin(self.g2, F.gelu(_lin(self.g1, torch.cat([h_cont, h_bin], -1)))))
        out = _lin(self.out, g * h_cont + (1 - g) * h_bin)
        return F.layer_norm(out, (d,), eps=self.eps) * self.norm_w + self.norm_b


class _SetStack:
    def __init__(self, encs: list[SetEncoder]):
        self.table, self.offsets = _tables([e.learned for e in encs])
        self.semantic = _stack_linear([e.semantic for e in encs])
        self.g1, self.g2 = _stack_linear([e.gate[0] for e in encs]), _stack_linear([e.gate[2] for e in encs])
        self.cap = torch.stack([1 - e.semantic_floor for e in encs]).view(-1, 1, 1)
        self.ordinal = [(k, e) for k, e in enumerate(encs) if e.is_ordinal]  # their rank terms, one by one

    def __call__(self, batches: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        idx = torch.stack([b["idx"] for b in batches]).long()  # (K, n)
        learned = self.table[idx + self.offsets.view(-1, 1)]
        sem_in = torch.stack([b["semantic"] for b in batches]).to(self.table.dtype)
        semantic = _lin(self.semantic, sem_in)
        g = torch.sigmoid(_lin(self.g2, F.gelu(_lin(self.g1, torch.cat([learned, semantic], -1)))))
        g = torch.where((idx > 0).unsqueeze(-1), torch.minimum(g, self.cap), torch.zeros_like(g))
        out = g * learned + (1 - g) * semantic
        for k, enc in self.ordinal:
            rank = batches[k]["ordinal"].to(out.dtype).unsqueeze(-1)
            ang = rank * enc.freqs
            ordv = enc.ordinal(torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1))
            out[k] = out[k] + torch.where(rank >= 0, ordv, torch.zeros_like(ordv))
        return out


def _kind(enc: nn.Module):
    if isinstance(enc, AdaptiveScalarEncoder):
        return _ScalarStack, (type(enc), enc.continuous_mlp[0].weight.shape, enc.binned_mlp[0].weight.shape,
                              enc.gate[0].weight.shape, len(enc.embeddings))
    if isinstance(enc, SetEncoder):
        return _SetStack, (type(enc), enc.semantic.weight.shape, enc.gate[0].weight.shape)
    return None, None


class EncoderBank:
    """Groups of same-kind encoders (column positions) with their stacked weights."""

    def __init__(self, encoders: nn.ModuleList):
        groups: dict = {}
        for i, enc in enumerate(encoders):
            maker, key = _kind(enc)
            if maker is not None:
                groups.setdefault(key, (maker, []))[1].append(i)
        self.groups = [(positions, maker([encoders[i] for i in positions]))
                       for maker, positions in groups.values() if len(positions) > 1]
        self.stacked = {i for positions, _ in self.groups for i in positions}

    def encode(self, encoders: nn.ModuleList, batches: list[dict[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(full (n, C, d), short (n, C, 3)) of every column; ``batches`` in column order."""
        batches = [per_row(b) for b in batches]
        fulls: list = [None] * len(batches)
        for positions, stack in self.groups:
            out = stack([batches[i] for i in positions])
            for k, i in enumerate(positions):
                missing = batches[i]["missing"].unsqueeze(-1)
                fulls[i] = torch.where(missing, encoders[i].missing_embedding.expand_as(out[k]), out[k])
        shorts: list = [None] * len(batches)
        for i, enc in enumerate(encoders):
            if i in self.stacked:
                shorts[i] = F.normalize(fulls[i][:, :3], dim=-1, eps=1e-6)
            else:
                fulls[i], shorts[i] = enc(batches[i])
        return torch.stack(fulls, dim=1), torch.stack(shorts, dim=1)


def _tensors(modules: list[nn.Module]) -> tuple:
    """(id, version, storage, dtype, device) of every parameter and buffer of ``modules``: it changes
    when one is updated in place (an optimizer step, pruning, ``load_state_dict``), replaced, given
    new data through ``.data`` or moved (``.to``, which keeps id and version)."""
    return tuple((id(t), t._version, t.data_ptr(), t.dtype, t.device) for m in modules
                 for d in (m._parameters, m._buffers) for t in d.values() if t is not None)


class StackedMLP:
    """K ``Sequential(Linear, GELU, Dropout, Linear)`` in eval form: (K, n, d_in) → (K, n, d_out)."""

    def __init__(self, mlps: list[nn.Sequential]):
        self.first, self.second = _stack_linear([m[0] for m in mlps]), _stack_linear([m[3] for m in mlps])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _lin(self.second, F.gelu(_lin(self.first, x)))


def cached(owner: nn.Module, name: str, build):
    """``build(owner)``, kept in ``owner.__dict__[name]`` (past nn.Module.__setattr__: not a submodule,
    never saved) and rebuilt when any parameter or buffer of ``owner`` changed or was replaced."""
    children = tuple(map(id, owner.children()))
    entry = owner.__dict__.get(name)
    if entry is None or entry[0] != children:  # first use, or an encoder replaced
        entry = owner.__dict__[name] = [children, list(owner.modules()), None, None]
    key = _tensors(entry[1])
    if entry[2] != key:
        entry[2:] = [key, build(owner)]
    return entry[3]


@torch.no_grad()
def bank_encode(net, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``net.encode_columns(batch)`` through an :class:`EncoderBank` of ``net``'s encoders (eval
    mode only)."""
    if net.training:
        raise RuntimeError("bank_encode is for eval-mode encoding; the trainer uses net.encode_columns")
    bank = cached(net.encoders, "_encoder_bank", EncoderBank)
    return bank.encode(net.encoders, [batch[name] for name in net.columns])


def stacked_converters(joint) -> StackedMLP:
    """The joint encoder's per-column in-converters as one :class:`StackedMLP` (eval only)."""
    return cached(joint.in_converters, "_stacked", lambda convs: StackedMLP(list(convs)))
