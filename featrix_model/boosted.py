"""The predictor's second head: gradient-boosted trees on the row embedding ⊕ the raw columns, and
the blend of the two heads chosen on the validation rows.

    head = BoostedHead.fit(X, rows, space.plan, hidden, y, tr, task, seed=0, threads=1)
    head.outputs(X, rows, space.plan)       # the MLP's output shape: logits, or (mean, ·) in z units
    w, why, scores = choose_blend(mlp_va, head.outputs(X[va], rows.iloc[va], space.plan), y[va], task)

The trees read ``[X | R | T]``: the row embedding, the raw columns (``RawColumns``: scalars as numbers,
categories as the space's codes, timestamps as epoch / hour / weekday / month; NaN = missing or
unknown) and the text scores of free-text columns (``featrix_model.text_scores``).

Why a second head: the space compresses each column into a shared embedding, and what it blurs (a
sharp threshold on one scalar, a rare category) an MLP on the frozen embedding cannot get back, while
trees on the raw value split on it exactly. The trees also read the embedding, so what the space adds
(context from other columns, pooled child rows) stays available to them.

How it is trained, deterministically: LightGBM (single thread count as recorded, ``deterministic``,
row-wise histograms, fixed seed) with early stopping on an inner split of the *training* rows; then
refit on all training rows with the rounds found. The validation rows stay unseen, so the blend
weight chosen on them (``choose_blend``: the MLP alone, the trees alone, or three mixes of their
outputs) is judged on rows neither head trained on — the MLP's early stopping looked at them, which
favours the MLP, so the trees only win when they are clearly better.

A column hidden for importance is NaN in ``R`` (the trees' missing value) as it is MARGINAL in the
embedding, so occlusion importance means the same for every head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from featrix_model.codecs.scalar import parse_numeric
from featrix_model.codecs.string import column_texts, gather
from featrix_model.codecs.timestamp import calendar, parse_timestamps
from featrix_model.text_scores import TextScores

RAW_TYPES = ("scalar", "set", "boolean", "timestamp")
BLEND_WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)  # the MLP's share; the first of equal scores wins
ROUNDS, LEARNING_RATE, EARLY_STOP, INNER_FRACTION = 2000, 0.05, 50, 0.2
MAX_CATEGORICAL = 64  # more members than this: the code as a number (category splits over thousands overfit)
MIN_ROWS = 40  # fewer training rows than this: no trees (the inner split could not stop them honestly)


@dataclass
class RawColumns:
    """The raw columns the trees read: the space's columns of a type with a plain numeric reading."""

    columns: list[str]
    types: list[str]
    members: list[list[str] | None]  # categorical vocabularies (the space's codec's), in code order

    @classmethod
    def from_plan(cls, plan, hidden=()) -> "RawColumns":
        cols, types, members = [], [], []
        for c in plan.columns:
            t = plan.info[c]["semantic_type"]
            if c in hidden or t not in RAW_TYPES:
                continue
            cols.append(c)
            types.append(t)
            members.append(list(plan.codecs[c].members_) if t in ("set", "boolean") else None)
        return cls(cols, types, members)

    @property
    def names(self) -> list[str]:
        """Feature names per matrix column (timestamps give four: epoch, hour, weekday, month)."""
        out = []
        for c, t in zip(self.columns, self.types):
            out += [f"{c}.{p}" for p in ("epoch", "hour", "weekday", "month")] if t == "timestamp" else [c]
        return out

    @property
    def categorical(self) -> list[int]:
        """Matrix positions of the features split as categories (after the embedding's ``d`` columns: add
        d): categorical columns of at most ``MAX_CATEGORICAL`` members; larger ones are read as their
        code, a number (members in the codec's order, most frequent first)."""
        out, pos = [], 0
        for t, m in zip(self.types, self.members):
            if t in ("set", "boolean") and len(m) <= MAX_CATEGORICAL:
                out.append(pos)
            pos += 4 if t == "timestamp" else 1
        return out

    def spans(self) -> dict[str, list[int]]:
        """Each raw column's matrix positions (to blank a column for importance)."""
        out, pos = {}, 0
        for c, t in zip(self.columns, self.types):
            width = 4 if t == "timestamp" else 1
            out[c] = list(range(pos, pos + width))
            pos += width
        return out

    def matrix(self, rows: pd.DataFrame, plan) -> np.ndarray:
        parts = [self._column(rows[c], t, plan.codecs[c]) for c, t in zip(self.columns, self.types)]
        return np.column_stack(parts).astype(np.float64) if parts else np.zeros((len(rows), 0))

    @staticmethod
    def _column(values: pd.Series, t: str, codec) -> np.ndarray:
        if t == "scalar":
            return parse_numeric(values)[0]
        if t == "timestamp":
            cal = calendar(parse_timestamps(values)[0].to_numpy())
            return np.column_stack([cal["epoch_s"], cal["hour"], cal["day_of_week"], cal["month"]])
        inv, texts = column_texts(values, codec._normalise)
        codes = np.array([codec.index_.get(x, 0) for x in texts], dtype=np.float64)
        codes = gather(codes, inv, 0.0)
        return np.where(codes == 0, np.nan, codes - 1)  # 0 = unknown to the codec → missing to the trees

    def to_dict(self) -> dict:
        return {"columns": self.columns, "types": self.types, "members": self.members}

    @classmethod
    def from_dict(cls, d: dict) -> "RawColumns":
        return cls(list(d["columns"]), list(d["types"]), list(d["members"]))


def _params(task, seed: int, threads: int) -> dict:
    n_out = task.n_out
    base = {"learning_rate": LEARNING_RATE, "verbose": -1, "seed": seed, "deterministic": True,
            "force_row_wise": True, "num_threads": max(1, int(threads))}
    if task.kind.value == "regression":
        return {**base, "objective": "regression"}
    if n_out == 2:
        return {**base, "objective": "binary"}
    return {**base, "objective": "multiclass", "num_class": n_out}


class BoostedHead:
    def __init__(self, booster, raw: RawColumns, text: TextScores | None, d_embedding: int, n_out: int,
                 rounds: int, why: str, embedding: bool = True, fill: list | None = None):
        self.booster, self.raw, self.text, self.d, self.n_out = booster, raw, text, d_embedding, n_out
        self.rounds, self.why, self.embedding = rounds, why, embedding
        self.fill = None if fill is None else np.array([np.nan if v is None else v for v in fill], dtype=np.float64)

    def side(self, rows: pd.DataFrame, plan, out_of_fold: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(R, T)``: the raw columns and text scores of ``rows`` — the same for every embedding of
        them, so importance's variants of a row read them once."""
        R = self.raw.matrix(rows, plan)
        T = self.text.features(rows, out_of_fold) if self.text is not None else np.zeros((len(rows), 0))
        return R, T

    def features(self, X: np.ndarray, rows: pd.DataFrame, plan, blank=(), out_of_fold: bool = False,
                 side: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """``[X | R | T]`` for ``rows`` (``[R | T]`` when the trees do without the embedding); the
        columns in ``blank`` read as missing (importance); ``side``: ``side(rows, plan)`` when known."""
        R, T = side if side is not None else self.side(rows, plan, out_of_fold)
        d = self.d if self.embedding else 0
        Z = np.hstack([X.astype(np.float64)[:, :d], R, T])
        spans = {**{c: [d + i for i in v] for c, v in self.raw.spans().items()},
                 **(self.text.spans(d + R.shape[1]) if self.text is not None else {})}
        for c in blank:
            Z[:, spans.get(c, [])] = np.nan
        if self.fill is not None:  # a feature with no missing value in training: LightGBM would read NaN as 0
            Z = np.where(np.isnan(Z) & ~np.isnan(self.fill), self.fill, Z)
        return Z

    @staticmethod
    def _fill_values(Z: np.ndarray, cats: list[int]) -> np.ndarray:
        """Per feature: None where the training rows had missing values (the trees learned where they
        go) or the feature is split as categories (missing goes to the "other" side); else the training
        median, what a missing or hidden value reads as — the column at a typical value."""
        out = []
        for j in range(Z.shape[1]):
            col = Z[:, j]
            out.append(np.nan if j in cats or np.isnan(col).any() or not len(col) else float(np.median(col)))
        return np.array(out, dtype=np.float64)

    @classmethod
    def fit(cls, X: np.ndarray, rows: pd.DataFrame, plan, hidden, y: np.ndarray, tr: np.ndarray, task, *,
            seed: int, threads: int, embedding_allowed: bool = True) -> "BoostedHead | None":
        """Trees on the training rows ``tr``; None with fewer than ``MIN_ROWS`` rows. Two feature sets
        compete on an inner split of the training rows — with the embedding ``[X | R | T]`` and without
        it ``[R | T]`` (the embedding's many smooth dimensions can crowd out the raw columns' splits:
        flights 10K, 0.692 AUC on the raw columns, 0.672 with the embedding beside them) — and the one
        with the lower inner loss is refit on all training rows with its early-stopped rounds.
        ``embedding_allowed=False`` (the space was fine-tuned on these rows' labels, so its embedding of a
        training row has seen that row's target): ``[R | T]`` only."""
        import lightgbm as lgb

        if len(tr) < MIN_ROWS:
            return None
        raw = RawColumns.from_plan(plan, hidden)
        text = TextScores.fit(rows, plan, hidden, y, tr, task, seed)
        params = _params(task, seed, threads)
        order = np.random.default_rng(seed).permutation(tr)
        n_inner = max(1, int(round(len(tr) * INNER_FRACTION)))
        inner, fit_rows = np.sort(order[:n_inner]), np.sort(order[n_inner:])
        label = y.astype(np.float64)
        tried = {}
        has_raw = bool(raw.columns) or text is not None
        if not has_raw and not embedding_allowed:
            return None
        for embedding in ((True, False) if has_raw and embedding_allowed else (True,) if not has_raw else (False,)):
            n_out = 1 if task.kind.value == "regression" else task.n_out  # regression: one output, the mean
            head = cls(None, raw, text, X.shape[1], n_out, 0, "", embedding)
            Z = head.features(X, rows, plan, out_of_fold=True)
            cats = [(X.shape[1] if embedding else 0) + i for i in raw.categorical]

            def dataset(idx, reference=None, Z=Z, cats=cats):
                return lgb.Dataset(Z[idx], label[idx], categorical_feature=cats, free_raw_data=False,
                                   reference=reference, params={"verbose": -1, "min_data_in_bin": 1})

            train = dataset(fit_rows)
            probe = lgb.train(params, train, ROUNDS, valid_sets=[dataset(inner, train)],
                              callbacks=[lgb.early_stopping(EARLY_STOP, verbose=False)])
            loss = float(next(iter(probe.best_score["valid_0"].values())))
            tried[embedding] = (loss, max(1, int(probe.best_iteration or ROUNDS)), head, dataset)
        embedding = min(tried, key=lambda e: (tried[e][0], not e))  # equal losses: keep the embedding
        loss, rounds, head, dataset = tried[embedding]
        head.fill = cls._fill_values(head.features(X[tr], rows.iloc[tr].reset_index(drop=True), plan),
                                     [(X.shape[1] if embedding else 0) + i for i in raw.categorical])
        head.booster, head.rounds = lgb.train(params, dataset(tr), rounds), rounds
        texts = f", the text scores of {', '.join(text.columns)} (cross-fitted)" if text is not None else ""
        losses = "; ".join(f"{'with' if e else 'without'} the embedding {v[0]:.4f}" for e, v in tried.items())
        head.why = (f"LightGBM on {'the ' + str(X.shape[1]) + '-d embedding, ' if embedding else ''}"
                    f"{len(raw.names)} raw features{texts}; inner validation loss {losses}; {rounds} rounds at "
                    f"learning rate {LEARNING_RATE} (early stopping on {n_inner:,} of the training rows, then "
                    "refit on all of them)")
        if text is not None:
            text._oof = None  # the cross-fitted scores served the training rows only
        return head

    def outputs(self, X: np.ndarray, rows: pd.DataFrame, plan, blank=(), side=None) -> np.ndarray:
        """Raw scores in the MLP's output layout: logits (binary: [0, s]) or regression (mean, 0)."""
        Z = self.features(X, rows, plan, blank, side=side)
        s = np.asarray(self.booster.predict(Z, raw_score=True, num_threads=1), dtype=np.float64)
        if self.n_out == 1:  # regression: (mean, log variance 0); ``blend`` keeps the MLP's variance
            s = s.reshape(len(Z))
            return np.column_stack([s, np.zeros_like(s)]).astype(np.float32)
        if self.n_out == 2:
            s = s.reshape(len(Z))
            return np.column_stack([np.zeros_like(s), s]).astype(np.float32)
        return s.reshape(len(Z), self.n_out).astype(np.float32)

    def model_string(self) -> str:
        return self.booster.model_to_string()

    def get_state(self) -> dict:
        return {"raw": self.raw.to_dict(), "text": self.text.get_state() if self.text is not None else None,
                "d_embedding": self.d, "n_out": self.n_out, "rounds": self.rounds, "why": self.why,
                "embedding": self.embedding,
                "fill": None if self.fill is None else [None if np.isnan(v) else float(v) for v in self.fill]}

    @classmethod
    def from_state(cls, state: dict, model: str) -> "BoostedHead":
        import lightgbm as lgb

        return cls(lgb.Booster(model_str=model), RawColumns.from_dict(state["raw"]),
                   TextScores.from_state(state.get("text")), int(state["d_embedding"]),
                   int(state["n_out"]), int(state["rounds"]), state["why"], bool(state.get("embedding", True)),
                   state.get("fill"))


def blend(mlp_out: np.ndarray, tree_out: np.ndarray, w: float, regression: bool) -> np.ndarray:
    """``w`` × the MLP's outputs + (1 − w) × the trees'; a regression keeps the MLP's log variance."""
    if w >= 1.0:
        return mlp_out
    out = (w * mlp_out + (1.0 - w) * tree_out).astype(np.float32)
    if regression:
        out[:, 1] = mlp_out[:, 1]
    return out


def _score(task, out: np.ndarray, y: np.ndarray) -> float:
    """Higher is better: AUC (binary), minus log loss (multi-class), minus RMSE (regression, z units)."""
    kind = task.kind.value
    if kind == "regression":
        return -float(np.sqrt(np.mean((out[:, 0] - y) ** 2)))
    z = out - out.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    if kind == "binary" and len(np.unique(y)) == 2:
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(y == 1, logp[:, 1]))
    return float(np.mean(logp[np.arange(len(y)), y.astype(int)]))


def choose_blend(mlp_va: np.ndarray, tree_va: np.ndarray, y_va: np.ndarray, task) -> tuple[float, str, dict]:
    """The MLP's share of the blend (one of ``BLEND_WEIGHTS``) with the best validation score."""
    regression = task.kind.value == "regression"
    metric = {"regression": "RMSE (z units)", "binary": "AUC"}.get(task.kind.value, "log loss")
    if len(y_va) < 2 or (task.kind.value == "binary" and len(np.unique(y_va)) < 2):
        return 1.0, "the MLP alone: too few validation rows to compare heads", {}
    scores = {w: _score(task, blend(mlp_va, tree_va, w, regression), y_va) for w in BLEND_WEIGHTS}
    best = max(BLEND_WEIGHTS, key=lambda w: (scores[w], w))
    shown = {f"{w:g}": round(abs(v), 4) for w, v in scores.items()}
    name = ("the MLP alone" if best == 1.0 else "the trees alone" if best == 0.0
            else f"{best:g} × MLP + {1 - best:g} × trees")
    why = (f"{name}: best validation {metric} over the MLP's shares {shown} "
           f"({len(y_va):,} validation rows neither head trained on)")
    return best, why, shown
