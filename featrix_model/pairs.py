"""Which column pairs are relationship candidates, and the prior order causal pruning starts from (spec §6).

Pairs are ranked by the normalised mutual information of their binned values on a seeded sample —
a cheap, type-agnostic dependence measure (numbers: quantile bins; everything else: the 15 most
frequent values + other + null). Dependent pairs are where explicit products, ratios and
differences are most likely to help; the joint encoder still sees every column through attention.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SAMPLE_ROWS = 5000
BINS = 16


def _binned(values: pd.Series) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_datetime64_any_dtype(values) else \
        values.astype("int64", errors="ignore")
    if pd.api.types.is_numeric_dtype(numeric) and numeric.notna().mean() > 0.8 and numeric.nunique() > BINS:
        codes = pd.qcut(numeric.rank(method="first"), BINS, labels=False)
        return np.where(codes.isna(), BINS, codes).astype(int)
    text = values.astype("string")
    top = text.value_counts().index[:BINS - 1]
    codes = pd.Categorical(text.where(text.isin(top)), categories=top).codes.copy()
    codes[text.isna().to_numpy()] = BINS
    codes[codes < 0] = BINS - 1
    return codes.astype(int)


def _nmi(a: np.ndarray, b: np.ndarray) -> float:
    joint = pd.crosstab(a, b).to_numpy().astype(float)
    p = joint / joint.sum()
    pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / (pa @ pb)[nz])).sum())
    ha = -float((pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = -float((pb[pb > 0] * np.log(pb[pb > 0])).sum())
    return mi / max(1e-12, min(ha, hb)) if min(ha, hb) > 0 else 0.0


def select_pairs(df: pd.DataFrame, columns: list[str], k: int, seed: int = 0,
                 pool: int = 0) -> tuple[list[tuple[int, int]], list[dict]]:
    """Candidate pairs (indices into ``columns``), best prior first, and a JSON-able ranking with scores.

    Without a ``pool`` (or one no larger than ``k``): the top ``k`` by mutual information, used for
    the whole fit. With ``pool > k`` (causal pruning, ``training.relations``): two thirds of the pool
    are the top pairs by mutual information and a third is drawn (seeded) from the rest — a pair can
    serve a third column without its own two columns depending on each other (c = a / b with a and b
    independent), and only exploring it shows that. The first ``k`` are always the top ``k`` by MI."""
    if k <= 0 or len(columns) < 2:
        return [], []
    sample = df[columns].sample(n=min(len(df), SAMPLE_ROWS), random_state=seed) if len(df) > SAMPLE_ROWS else df[columns]
    binned = [_binned(sample[c]) for c in columns]
    scored = []
    for i in range(len(columns)):
        for j in range(i + 1, len(columns)):
            scored.append((round(_nmi(binned[i], binned[j]), 6), i, j))
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    size = max(k, min(pool, len(scored)))
    n_top = max(k, math.ceil(2 * size / 3)) if size > k else k
    rest = scored[n_top:]
    drawn = sorted(np.random.default_rng([seed, 17]).choice(len(rest), size=size - n_top, replace=False).tolist()) \
        if size > n_top else []
    candidates = scored[:n_top] + [rest[d] for d in drawn]
    chosen = [(i, j) for _, i, j in candidates]
    picked = {(i, j) for i, j in chosen}
    ranking = [{"pair": [columns[i], columns[j]], "nmi": s, "chosen": n < k, "candidate": (i, j) in picked}
               for n, (s, i, j) in enumerate(scored[: max(3 * k, size)])]
    return chosen, ranking
