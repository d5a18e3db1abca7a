"""Text that survives the space: a linear model of the target on each free-text column's 384-d
sentence vector, whose scores the trees head reads as features (``featrix_model.boosted``).

    text = TextScores.fit(rows, plan, hidden, y, tr, task, seed)   # None when no free-text column
    T = text.features(rows, out_of_fold=True)                       # training rows: cross-fitted scores
    T = text.features(rows)                                        # any other rows: the full model's

Why: the space folds a text column's sentence vector into one shared row embedding next to every
other column, and a head on that embedding recovers only part of what the sentence model knew (a
reviews table lost 0.08 AUC against TF-IDF on the text alone). A logistic (or ridge) model on the
sentence vector itself keeps it; its score is one more column for the trees.

No target leaks into the trees' training features: the scores of the training rows are cross-fitted
(each row scored by a model fitted on the other folds), the validation rows and every prediction use
the model fitted on all training rows. The coefficients are plain floats in the predictor's JSON.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from featrix_model.codecs.string import column_texts, embed_distinct, gather

FOLDS, C, ALPHA = 5, 1.0, 1.0
MISSING_CLASS = -10.0  # a class no row of a fold had: this far below the others (log-odds)


def sentence_vectors(values: pd.Series) -> np.ndarray:
    """(n, 384) sentence vectors, zeros for missing values (each distinct text embedded once)."""
    inv, texts = column_texts(values)
    return gather(embed_distinct(texts), inv, 0.0).astype(np.float64)


def _fit_linear(V: np.ndarray, y: np.ndarray, kind: str, n_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(coef (k, 384), intercept (k,)): k = 1 for regression and binary, n_out for multi-class."""
    from sklearn.linear_model import LogisticRegression, Ridge

    if kind == "regression":
        m = Ridge(alpha=ALPHA).fit(V, y)
        return np.atleast_2d(m.coef_), np.atleast_1d(m.intercept_)
    classes = np.unique(y).astype(int)
    k = 1 if n_out == 2 else n_out
    coef, icpt = np.zeros((k, V.shape[1])), np.full(k, MISSING_CLASS)
    if len(classes) < 2:  # one class only: it scores 0, the absent ones MISSING_CLASS (binary: log-odds of class 1)
        if k == 1:
            icpt[0] = -MISSING_CLASS if classes[0] == 1 else MISSING_CLASS
        else:
            icpt[classes[0]] = 0.0
        return coef, icpt
    m = LogisticRegression(C=C, max_iter=1000, random_state=seed).fit(V, y.astype(int))
    if k == 1:  # both classes present: decision_function scores class 1
        return m.coef_, m.intercept_
    if len(classes) == 2:  # a fold with two of the classes: one score, the second class's
        coef[classes[1]], icpt[classes[1]], icpt[classes[0]] = m.coef_[0], m.intercept_[0], 0.0
        return coef, icpt
    coef[classes], icpt[classes] = m.coef_, m.intercept_
    return coef, icpt


class TextScores:
    def __init__(self, columns: list[str], coef: list[np.ndarray], intercept: list[np.ndarray]):
        self.columns, self.coef, self.intercept = columns, coef, intercept
        self._oof: np.ndarray | None = None

    @property
    def width(self) -> int:
        return sum(len(b) for b in self.intercept)

    def spans(self, offset: int) -> dict[str, list[int]]:
        out, pos = {}, offset
        for c, b in zip(self.columns, self.intercept):
            out[c] = list(range(pos, pos + len(b)))
            pos += len(b)
        return out

    @classmethod
    def fit(cls, rows: pd.DataFrame, plan, hidden, y: np.ndarray, tr: np.ndarray, task, seed: int
            ) -> "TextScores | None":
        from sklearn.model_selection import KFold

        cols = [c for c in plan.columns if plan.info[c]["semantic_type"] == "string" and c not in hidden]
        if not cols or len(tr) < 2 * FOLDS:
            return None
        kind, yt = task.kind.value, y[tr]
        vectors = {c: sentence_vectors(rows[c]) for c in cols}
        coef, icpt = zip(*(_fit_linear(vectors[c][tr], yt, kind, task.n_out, seed) for c in cols))
        out = cls(cols, list(coef), list(icpt))
        oof = np.full((len(rows), out.width), np.nan)
        folds = KFold(FOLDS, shuffle=True, random_state=seed).split(tr)
        for fit_i, score_i in folds:
            pos = 0
            for c in cols:
                w, b = _fit_linear(vectors[c][tr[fit_i]], yt[fit_i], kind, task.n_out, seed)
                oof[tr[score_i], pos:pos + len(b)] = vectors[c][tr[score_i]] @ w.T + b
                pos += len(b)
        out._oof = oof
        return out

    def features(self, rows: pd.DataFrame, out_of_fold: bool = False) -> np.ndarray:
        """Scores per text column (n, width); ``out_of_fold``: the training rows' cross-fitted ones
        (right after ``fit``, for the same rows), the others from the model fitted on all of them."""
        full = np.column_stack([sentence_vectors(rows[c]) @ w.T + b
                                for c, w, b in zip(self.columns, self.coef, self.intercept)])
        if out_of_fold and self._oof is not None:
            return np.where(np.isnan(self._oof), full, self._oof)
        return full

    def get_state(self) -> dict:
        return {"columns": self.columns, "coef": [w.tolist() for w in self.coef],
                "intercept": [b.tolist() for b in self.intercept]}

    @classmethod
    def from_state(cls, state: dict | None) -> "TextScores | None":
        if not state:
            return None
        return cls(list(state["columns"]), [np.asarray(w, dtype=np.float64) for w in state["coef"]],
                   [np.asarray(b, dtype=np.float64) for b in state["intercept"]])
