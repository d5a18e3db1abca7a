"""Encoding forwards of fixed shape: the same row gives the same bytes alone or among thousands.

A batch's size changes the float sums of a CPU matmul (measured here: a row's column embeddings in
a batch of 8 differ from the same row's alone), so every forward pass has a fixed number of rows, the
last batch filled with copies of one of its rows whose outputs are dropped. Without this, one new row
scored by a refresh would differ from the same row in a full recompute.

Two stages, each in its own fixed shape:

* per row, ``ENCODE_BATCH`` (64) rows a forward: the column encoders (same-kind encoders stacked,
  ``encoders.bank``) and what of the joint encoder does not depend on which columns are visible — the
  in-converters (stacked) and the relationship tokens before masking (``JointEncoder.prepare``);
* per (row, variant), ``JOINT_BATCH`` (32) a forward: masking and the transformer
  (``JointEncoder.attend``).

``encode_variants`` encodes rows under several visibility masks at once — a row with every column
visible and with each column in turn hidden (importance by occlusion) — so variant v of row r has
exactly the bytes ``encode(row r, hide=hides[v])`` gives, and a row's 21 variants cost one row of
the first stage and 21 of the second.

Sizes, measured on a 20-column mixed table (1 thread): with one 64-row shape for everything, bulk
encoding ran 2,257 / 3,465 / 4,352 / 4,488 rows/s and single-row ``predict`` with importance p50 26 /
29 / 40 / 63 ms at 32 / 64 / 128 / 256 rows per forward. The transformer's cost per row is flat from
32 rows up (64 rows 9.5 ms, 32 rows 4.8, 16 rows 3.1, 8 rows 2.3), so its stage runs 32 rows a
forward; the first stage's cost is mostly per column, not per row, so it keeps 64. Changing either
changes result bytes.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from featrix_model.encoders.bank import bank_encode, stacked_converters
from featrix_model.network import Batch, EmbeddingNetwork
from featrix_model.training.trainer import gather

ENCODE_BATCH = 64
JOINT_BATCH = 32  # rows per joint-encoder forward (its cost per row is flat from 32 up, measured below)
BLOCK_ROWS = 64 * ENCODE_BATCH  # rows whose column embeddings are held at once at most
BLOCK_FLOATS = 1 << 25  # ...and at most this many floats of them (128 MB): rows × (columns + relationship tokens) × d


def block_rows(net: EmbeddingNetwork) -> int:
    """Rows per block: BLOCK_ROWS, fewer where a row's tokens are many (GPU widths, 8 tokens a pair),
    always a multiple of ENCODE_BATCH (a row's bytes do not depend on the block it falls in)."""
    per_row = (len(net.columns) + net.joint.relationships.n_tokens) * net.joint.d_model
    return max(ENCODE_BATCH, min(BLOCK_ROWS, BLOCK_FLOATS // max(1, per_row)) // ENCODE_BATCH * ENCODE_BATCH)


def fixed_batches(n: int, size: int = ENCODE_BATCH) -> Iterator[tuple[int, int, torch.Tensor]]:
    """(start, stop, index of ``size`` entries): entries start..stop-1, then copies of ``start``."""
    for start in range(0, n, size):
        stop = min(n, start + size)
        idx = torch.arange(start, start + size)
        idx[stop - start:] = start
        yield start, stop, idx


@torch.no_grad()
def encode_variants(net: EmbeddingNetwork, data: Batch, n: int,
                    visible: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Rows 0..n-1 of ``data`` under each of the V visibility masks ``visible`` (V, C): row
    embeddings (V, n, d_model) and short embeddings (V, n, 3), as float32 arrays."""
    n_variants, d = int(visible.shape[0]), net.joint.d_model
    if n == 0:
        return np.zeros((n_variants, 0, d), np.float32), np.zeros((n_variants, 0, 3), np.float32)
    if net.training:  # switching every module recursively costs milliseconds per call
        net.eval()
    visible = visible.to(net.device)
    rows = block_rows(net)
    blocks = [_block(net, data, start, min(n, start + rows), visible) for start in range(0, n, rows)]
    return np.concatenate([b[0] for b in blocks], axis=1), np.concatenate([b[1] for b in blocks], axis=1)


def _block(net: EmbeddingNetwork, data: Batch, first: int, stop: int,
           visible: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Rows first..stop-1: their column embeddings and what of the joint encoder does not depend on
    visibility (``JointEncoder.prepare``), once per row in ENCODE_BATCH-row forwards; then the rest
    of the joint encoder on every (row, variant) pair in JOINT_BATCH-row forwards."""
    n, n_variants, dev = stop - first, int(visible.shape[0]), net.device
    converters = stacked_converters(net.joint)
    converted, rels = [], []
    for start, end, idx in fixed_batches(n):
        full, _ = bank_encode(net, gather(data, idx + first, dev))
        conv, rel = net.joint.prepare(full, converters)
        converted.append(conv[: end - start])
        rels.append(None if rel is None else rel[: end - start])
    converted = torch.cat(converted)
    rel = None if rels[0] is None else torch.cat(rels)
    fulls, shorts = [], []
    for start, end, entry in fixed_batches(n * n_variants, JOINT_BATCH):
        entry = entry.to(dev)
        row = entry % n
        emb, short = net.joint.attend(converted[row], None if rel is None else rel[row], visible[entry // n])
        fulls.append(emb[: end - start].cpu())
        shorts.append(short[: end - start].cpu())
    d = net.joint.d_model
    return (torch.cat(fulls).numpy().reshape(n_variants, n, d), torch.cat(shorts).numpy().reshape(n_variants, n, 3))
