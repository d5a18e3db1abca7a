"""Explanations that reach into child tables: for a prediction on a relational space, the share of
the row's importance each child relationship carries and the child rows that weighed most.

    explain_children(space, rows, importance)   # one {link: {...}} per row of ``rows`` (prepared)

Per link (``<link>``: the relationship's name in the space, e.g. ``flights``):

* ``share`` — the link's columns (``<link>.children``, ``<link>.count``, ``<link>.<column>.<statistic>``)
  over all columns, by the row's absolute occlusion importance (the same numbers as
  ``feature_importance``), so the parent's own columns carry ``1 − Σ shares``;
* ``children`` — how many child rows the parent has (before the space's cap);
* ``top_children`` — the child rows that weighed most on this prediction: each of the parent's
  children (up to ``MAX_LEFT_OUT``, those with the most attention first) is left out of the pooling in
  turn (``<link>.count`` one lower; the statistics keep every child) and the row's score recomputed; ``effect`` is the score with the child minus the score without
  it, on a scale that does not saturate — the head's log-odds of the class ``feature_importance``
  tracks, before calibration (a calibrated 0.99999 hardly moves), or the predicted value — ``weight`` the child's attention weight in the
  space's pooling (the mean over the learned queries of each query's softmax over the children
  present; a parent's weights sum to 1), ``row`` the child row's 0-based position in the child table
  as given to the space. Ranked by |effect|, then weight.

Attention alone says which children the pooled vector is made of, not what the prediction rests on:
measured on a planted task (one "alarm" child among 4–9 ordinary ones decides the label), the
fine-tuned pooling spread its attention evenly (≈ 1/k each) while leaving the alarm row out moved the
score most — hence the ranking by effect, with the weight reported beside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

TOP_CHILDREN = 5
MAX_LEFT_OUT = 32  # children per parent and link whose effect is measured (most attention first)


def attention(space, rows: pd.DataFrame, link) -> tuple[list[np.ndarray], np.ndarray]:
    """(child positions per row, (n, cap) attention weights) of ``link``'s children for ``rows``."""
    col = link.column
    enc = space.net.encoders[space.plan.columns.index(col)]
    batch = space.plan.codecs[col].transform(rows[col])
    was = enc.training
    enc.eval()
    with torch.no_grad():
        dev = next(enc.parameters()).device
        h = enc.inp(batch["children"].to(dev))
        mask = batch["mask"].to(dev)
        scores = torch.einsum("ncd,qd->nqc", h, enc.queries) / h.shape[-1] ** 0.5
        att = torch.softmax(scores.masked_fill(~mask.unsqueeze(1), -1e9), dim=-1).mean(1)
        att = torch.where(mask, att, torch.zeros_like(att)).cpu().numpy()
    enc.train(was)
    positions = [np.asarray(v[0], dtype=np.int64) if v is not None else np.zeros(0, np.int64) for v in rows[col]]
    return positions, att


def explain_children(space, rows: pd.DataFrame, importance: list[dict], score, top: int = TOP_CHILDREN
                     ) -> list[dict]:
    """``score(variant_rows, of)``: the predictor's row score of prepared ``variant_rows``, each the
    variant of row ``of[j]`` of ``rows`` (tracked against that row's own prediction)."""
    out = [{} for _ in range(len(rows))]
    base = score(rows, np.arange(len(rows)))
    for link in space.links:
        positions, att = attention(space, rows, link)
        values = rows[link.column].tolist()
        variants, of, which = [], [], []
        for i, v in enumerate(values):
            for j in np.argsort(-att[i, :len(positions[i])], kind="stable")[:MAX_LEFT_OUT]:
                kept = np.delete(positions[i], j)
                variants.append((kept.tolist(), max(int(v[1]) - 1, 0)) if len(kept) else None)
                of.append(i)
                which.append(int(j))
        effect = np.zeros(0)
        if variants:
            frame = rows.iloc[of].reset_index(drop=True)
            frame[link.column] = pd.Series(variants, dtype=object)
            count = f"{link.name}.count"
            if count in frame.columns:  # the count column agrees with the pooled children (statistics keep every child)
                frame[count] = pd.to_numeric(frame[count], errors="coerce") - 1
            effect = base[of] - score(frame, np.asarray(of))
        by_row: dict[int, list] = {}
        for k, (i, j) in enumerate(zip(of, which)):
            by_row.setdefault(i, []).append((j, float(effect[k])))
        prefix = f"{link.name}."
        for i in range(len(rows)):
            w = att[i]
            ranked = sorted(by_row.get(i, []), key=lambda t: (-abs(t[1]), -w[t[0]]))[:top]
            imp = importance[i]
            total = sum(abs(x) for x in imp.values())
            mine = sum(abs(x) for c, x in imp.items() if c.startswith(prefix))
            out[i][link.name] = {
                "child_table": link.rel.child, "children": 0 if values[i] is None else int(values[i][1]),
                "share": round(mine / total, 6) if total > 0 else 0.0,
                "top_children": [{"row": int(positions[i][j]), "weight": round(float(w[j]), 6), "effect": round(e, 6)}
                                 for j, e in ranked]}
    return out
