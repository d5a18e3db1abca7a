"""``Predictor``: a calibrated, explained, guarded model of one target on top of an embedding space
(spec §2.2–2.3, §3.1–3.2, §4.1, §4.3, §17–§18).

    p = Predictor.fit(es, df, target="churned")       # kind, loss, layers, threshold: automatic, with reasons
    p.predict(rows)        # list of dicts valid against schemas/prediction.schema.json
    p.predict_frame(df)    # DataFrame view of the same
    p.summary()            # what was decided and fitted (JSON); p.settings: what the caller asked for
    p.save(path); Predictor.load(path)

Inputs are the space's row embeddings computed with the target (and any ``exclude_features``)
*hidden* — replaced by the MARGINAL token the space was trained with — so the target never leaks
into its own features. Feature importance is column occlusion through the same mechanism.

Where the code lives: ``tasks`` (what differs by target kind: labels, split, loss, calibration or
intervals, responses, metrics), ``head`` (the MLP, its depth, its epochs, its training loop), and
here the fit as named steps, prediction, explanation and the artifacts.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from featrix_model import io
from featrix_model.child_explain import explain_children
from featrix_model.boosted import MIN_ROWS as TREES_MIN_ROWS
from featrix_model.boosted import BoostedHead, blend, choose_blend
from featrix_model.guardrails import OODDetector, ood_warning
from featrix_model.head import (OVER_BUDGET_WARN, HeadTrainer, PredictorMLP, choose_depth, fixed_shape_outputs,
                                hidden_width, plan_epochs)
from featrix_model.jsonable import to_jsonable
from featrix_model.loading import load_space
from featrix_model.space import ENCODE_CHUNK, use_threads
from featrix_model.tasks import TaskType, detect_kind, make_task, resolve_kind, task_from_state  # noqa: F401 (re-exported)
from featrix_model.training.trainer import cuda_determinism

log = logging.getLogger("featrix_model")
FORMAT, VERSION = "featrix-predictor", 2
HEADS = ("auto", "mlp", "trees")
IMPORTANCE = ("column occlusion: each column hidden with the space's MARGINAL token (and, to the trees, "
              "missing or at its training median); "
              "value = score with the column − score without it")


@dataclass(frozen=True)
class PredictorConfig:
    """What the caller asked for (``Predictor.fit``'s settings); what was decided lives on the predictor."""

    target: str
    kind: str = "auto"
    positive_label: Any = None
    cost_false_positive: float | None = None
    cost_false_negative: float | None = None
    fine_tune: bool | None = None
    time_budget_s: float | None = None
    seed: int = 0
    loss: str = "auto"
    n_hidden_layers: int | None = None
    exclude_features: tuple[str, ...] = ()
    epochs: int | None = None
    validation_fraction: float = 0.2
    threads: int | None = None
    deterministic: bool = True  # CUDA: deterministic kernels when the space encodes on a GPU (no effect on a CPU)
    head: str = "auto"  # "auto": the MLP, the trees or a blend, chosen on the validation rows; "mlp"; "trees"

    def __post_init__(self):
        object.__setattr__(self, "exclude_features", tuple(self.exclude_features))
        if self.head not in HEADS:
            raise ValueError(f"head={self.head!r} is not one of {list(HEADS)}: 'auto' chooses on the validation rows")

    @property
    def hidden(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.target, *self.exclude_features)))

    def to_dict(self) -> dict:
        return to_jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "PredictorConfig":
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


class Predictor:
    def __init__(self, space, settings: PredictorConfig):
        self.space, self.settings = space, settings

    # ------------------------------------------------------------------ fit

    @classmethod
    def fit(cls, space, df: pd.DataFrame, target: str, kind: str = "auto", positive_label=None,
            cost_false_positive: float | None = None, cost_false_negative: float | None = None,
            fine_tune: bool | None = None, time_budget_s: float | None = None, *, seed: int = 0, loss: str = "auto",
            n_hidden_layers: int | None = None, exclude_features: tuple[str, ...] = (), epochs: int | None = None,
            validation_fraction: float = 0.2, threads: int | None = None,
            deterministic: bool = True, head: str = "auto") -> "Predictor":
        """``threads``: torch's thread count (None: the current one); recorded, as it changes result bytes.
        ``deterministic``: deterministic CUDA kernels when the space encodes on a GPU (recorded).
        ``head``: "auto" (the MLP on the embedding, gradient-boosted trees on the embedding and the raw
        columns, or a blend — chosen on the validation rows, reason in the decisions), "mlp" or "trees"."""
        settings = PredictorConfig(target, kind, positive_label, cost_false_positive, cost_false_negative, fine_tune,
                                   time_budget_s, seed, loss, n_hidden_layers, exclude_features, epochs,
                                   validation_fraction, use_threads(threads), bool(deterministic), head)
        return cls(space, settings)._fit(df)

    def _fit(self, df: pd.DataFrame) -> "Predictor":
        started, s = time.monotonic(), self.settings
        self.decisions_: list[str] = []
        df = self._labelled_rows(df)
        y, tr, va = self._set_up_task(df[s.target])
        rows, X = self._encode(df)
        criterion = self._build_head(X, y, tr)
        out_va = self._train_head(X, y, tr, va, rows, criterion)
        if self.fine_tune_:  # the space changed: guardrails must see the embeddings predictions will use
            X = self.space.encode(rows, hide=self.hidden_)
        out_va = self._fit_trees(rows, X, y, tr, va, out_va)
        self.task_.fit_outputs(out_va, y[va], s, self.decisions_)
        self.ood_ = OODDetector().fit(X[tr])
        self.model_version_ = self._content_hash()
        self.timeline_["metadata"]["fit_seconds"] = round(time.monotonic() - started, 2)
        for d in self.summary()["decisions"]:
            log.info(d)
        return self

    def _labelled_rows(self, df: pd.DataFrame) -> pd.DataFrame:
        """Rows with a target value (the others cannot teach; they can still be predicted)."""
        target = self.settings.target
        if target not in df.columns:
            raise KeyError(f"target {target!r} is not a column of the data; columns: {list(df.columns)}")
        df = df.reset_index(drop=True)
        keep = df[target].notna().to_numpy()
        if not keep.all():
            self.decisions_.append(f"[WARN] {int((~keep).sum()):,} rows have no value for '{target}': they cannot "
                                   "teach the predictor and are left out of training (they can still be predicted).")
        return df[keep].reset_index(drop=True)

    def _set_up_task(self, y_raw: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The task object (kind as detected or given), the encoded target and the fixed split."""
        s = self.settings
        kind, why = resolve_kind(s.kind, y_raw)
        if why:
            self.decisions_.append(f"kind: {kind} ({why})")
        self.task_ = make_task(kind, s.seed)
        y = self.task_.fit_target(y_raw, s.positive_label, self.decisions_)
        tr, va = self.task_.split(y, s.validation_fraction, self.decisions_)
        return y, tr, va

    def _encode(self, df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """Rows as the space encodes them (a relational space joins children once) and their embeddings
        with the target hidden. Fine-tuning works on a CPU copy: the caller's space stays untouched."""
        self.hidden_ = self.settings.hidden
        self.fine_tune_ = self.settings.fine_tune
        if self.fine_tune_ is None:
            reason = self.space.fine_tune_reason()
            self.fine_tune_ = reason is not None
            if reason:
                self.decisions_.append(f"fine-tune: on ({reason})")
        cuda_determinism(self.space.net.device, self.settings.deterministic, self.space.config.allow_tf32)
        rows = self.space.prepare(df, self.hidden_)
        if self.fine_tune_:
            self.space = copy.deepcopy(self.space)
            self.space.net.to("cpu")
        return rows, self.space.encode(rows, hide=self.hidden_)

    def _build_head(self, X: np.ndarray, y: np.ndarray, tr: np.ndarray) -> torch.nn.Module:
        s = self.settings
        depth, why = choose_depth(X[tr], y[tr], self.task_, s.n_hidden_layers, s.seed)
        self.decisions_.append(f"hidden layers: {depth} ({why})")
        torch.manual_seed(s.seed)
        self.mlp_ = PredictorMLP(X.shape[1], hidden_width(X.shape[1]), depth, self.task_.n_out)
        return self.task_.criterion(y[tr], s, self.decisions_)

    def _train_head(self, X, y, tr, va, rows, criterion) -> np.ndarray:
        """Train for the cost model's epochs; returns the head's outputs on the validation rows."""
        s, space = self.settings, (self.space if self.fine_tune_ else None)
        self.epochs_, budget, why = plan_epochs(self.mlp_, len(tr), len(va), s.epochs, s.time_budget_s, space)
        self.decisions_.append(f"epochs: at most {why}")
        trainer = HeadTrainer(self.mlp_, criterion, self.task_, space, rows if space is not None else None, self.hidden_)
        self.timeline_ = {"metadata": {"warnings": []}, "timeline": trainer.run(X, y, tr, va, self.epochs_, s.seed)}
        self.decisions_ += trainer.notes
        self.timeline_["metadata"]["train_seconds"] = round(trainer.seconds, 2)
        if trainer.seconds > OVER_BUDGET_WARN * budget:  # the clock only warns: it never changes what is trained
            self.timeline_["metadata"]["warnings"].append(
                f"[WARN] training took {trainer.seconds:.0f}s, over {OVER_BUDGET_WARN:g}× its {budget:.0f}s budget: this "
                "machine ran slower than the fixed cost model assumes (the epochs were not cut, results are reproducible)")
        return trainer.outputs(X, va)

    def _fit_trees(self, rows, X, y, tr, va, mlp_va) -> np.ndarray:
        """The trees head (``featrix_model.boosted``) and the MLP's share of the blend; returns the
        blended outputs on the validation rows. Trees the blend does not use are not kept."""
        s, regression = self.settings, self.task_.kind.value == "regression"
        self.trees_, self.blend_ = None, 1.0
        if s.head == "mlp":
            self.decisions_.append("head: the MLP alone (set by the caller)")
            return mlp_va
        trees = BoostedHead.fit(X, rows, self.space.plan, self.hidden_, y, tr, self.task_, seed=s.seed,
                                threads=s.threads or 1, embedding_allowed=not self.fine_tune_)
        if self.fine_tune_:
            self.decisions_.append("trees: without the embedding (the space was fine-tuned on the training rows' "
                                   "target, so its embedding of a training row has seen that row's label)")
        if trees is None:
            self.decisions_.append(f"head: the MLP alone (fewer than {TREES_MIN_ROWS} training rows for trees, or "
                                   "no raw or text column for them to read)")
            return mlp_va
        tree_va = trees.outputs(X[va], rows.iloc[va].reset_index(drop=True), self.space.plan)
        if s.head == "trees":
            w, why = 0.0, "the trees alone (set by the caller)"
        else:
            w, why, _ = choose_blend(mlp_va, tree_va, y[va], self.task_)
        self.decisions_.append(f"trees: {trees.why}")
        self.decisions_.append(f"head: {why}")
        if w < 1.0:
            self.trees_, self.blend_ = trees, w
        return blend(mlp_va, tree_va, w, regression)

    def _head_outputs(self, X: np.ndarray, rows: pd.DataFrame | None, blank=None, side=None) -> np.ndarray:
        """The chosen head's outputs for embeddings ``X`` of ``rows`` (not read by the MLP alone);
        ``blank``: columns whose raw values the trees see as missing (the column hidden from the
        embedding too, for importance); ``side``: the trees' ``side(rows)`` when already read."""
        if self.mlp_.training:
            self.mlp_.eval()
        with torch.no_grad():
            out = fixed_shape_outputs(self.mlp_, X)
        if self.trees_ is None:
            return out
        return blend(out, self.trees_.outputs(X, rows, self.space.plan, blank or (), side), self.blend_,
                     self.task_.kind.value == "regression")

    def _content_hash(self) -> str:
        """Same data, settings and seed → same version: sha256 of the settings, the fitted state, the
        head's weights and the space (config and weights)."""
        described = to_jsonable([self.settings.to_dict(), self._fitted_state(), self.space.config.to_dict()])
        h = hashlib.sha256(json.dumps(described, sort_keys=True).encode())
        for state in (self.mlp_.state_dict(), self.space.net.state_dict()):
            for k in sorted(state):
                h.update(k.encode() + state[k].detach().cpu().contiguous().numpy().tobytes())
        if self.trees_ is not None:
            h.update(self.trees_.model_string().encode())
        return f"{self.settings.target}-{h.hexdigest()[:12]}"

    # ------------------------------------------------------------------ what was decided

    @property
    def timeline(self) -> list[dict]:
        return self.timeline_["timeline"]

    def summary(self) -> dict:
        """JSON-able record of what was decided and fitted (the pipeline's view of a predictor)."""
        t = self.task_
        return to_jsonable({
            "target": self.settings.target, "kind": t.kind, "primary_metric": t.primary_metric,
            "higher_is_better": t.higher_is_better, **t.summary(), "fine_tune": self.fine_tune_,
            "hidden": list(self.hidden_), "n_hidden_layers": self.mlp_.shape["n_hidden"],
            "d_model": self.mlp_.shape["d_in"], "d_hidden": self.mlp_.shape["d_hidden"], "epochs": self.epochs_,
            "epochs_run": len(self.timeline), "head": self._head_summary(), "decisions": self.decisions_ + self.timeline_["metadata"]["warnings"],
            "model_version": self.model_version_, "fit_seconds": self.timeline_["metadata"].get("fit_seconds")})

    def _head_summary(self) -> dict:
        trees = self.trees_.get_state() if self.trees_ is not None else None
        return {"chosen": "mlp" if trees is None else "trees" if self.blend_ == 0.0 else "blend",
                "mlp_share": self.blend_, "trees": trees and {k: trees[k] for k in ("rounds", "why")},
                "raw_columns": trees["raw"]["columns"] if trees else []}

    # ------------------------------------------------------------------ predict

    def _outputs(self, rows: pd.DataFrame, hide_extra: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
        cuda_determinism(self.space.net.device, self.settings.deterministic, self.space.config.allow_tf32)
        X = self.space.encode(rows, hide=self.hidden_ + hide_extra)
        return X, self._head_outputs(X, rows, hide_extra)

    def predict_frame(self, df: pd.DataFrame, explain: bool = True) -> pd.DataFrame:
        """The responses of ``predict`` as a frame (one row per input row, no metadata column)."""
        return pd.DataFrame(self._responses(_rows(df, "predict_frame"), explain)).drop(columns=["metadata"])

    def predict(self, rows, explain: bool = True) -> list[dict]:
        """One response per row of ``rows``: a DataFrame, a dict or Series (one row), or a list of dicts."""
        return self._responses(_rows(rows, "predict"), explain)

    def _responses(self, df: pd.DataFrame, explain: bool) -> list[dict]:
        df = self.space.prepare(df, self.hidden_)  # prepared once (children joined), for every variant
        cols = [c for c in self.space.plan.columns if c not in self.hidden_] if explain else []
        meta = {"kind": self.task_.kind.value, "model_version": self.model_version_, "importance_method": IMPORTANCE,
                **self.task_.response_metadata()}
        out, step = [], max(1, ENCODE_CHUNK // (1 + len(cols)))  # rows × variants held at once: one encode chunk
        for s in range(0, len(df), step):
            out += self._chunk_responses(df.iloc[s:s + step].reset_index(drop=True), cols, meta)
        return out

    def _chunk_responses(self, df: pd.DataFrame, cols: list[str], meta: dict) -> list[dict]:
        """Responses for ``df``'s rows: the row as it is and, for importance, with each of ``cols``
        hidden in turn, all encoded in one pass (``EmbeddingSpace.encode_variants``)."""
        cuda_determinism(self.space.net.device, self.settings.deterministic, self.space.config.allow_tf32)
        variants = self.space.encode_variants(df, [self.hidden_] + [self.hidden_ + (c,) for c in cols])
        if self.trees_ is None:  # the MLP alone: every variant in one pass
            outs = self._head_outputs(variants.reshape(-1, variants.shape[-1]), None).reshape(len(variants), len(df), -1)
        else:  # the raw columns and text scores read once, blanked per variant
            side = self.trees_.side(df, self.space.plan)
            outs = np.stack([self._head_outputs(variants[j], df, () if j == 0 else (cols[j - 1],), side)
                             for j in range(len(variants))])
        X, out = variants[0], outs[0]
        sigma = self.ood_.sigma(X)
        scores = self.task_.scores(out)
        importance = self._importance(cols, scores, outs[1:])
        children = (explain_children(self.space, df, importance, lambda rows, of: self._margins(rows, scores[of]))
                    if cols and getattr(self.space, "links", None) else None)
        return [to_jsonable({"ood_sigma": round(float(sigma[i]), 3), "feature_importance": importance[i],
                             "warnings": [w for w in [ood_warning(float(sigma[i]))] if w],
                             **self.task_.response(out[i], scores[i], float(sigma[i])),
                             **({"child_tables": children[i]} if children else {}), "metadata": meta})
                for i in range(len(df))]

    def _margins(self, rows: pd.DataFrame, reference: np.ndarray) -> np.ndarray:
        """Prepared ``rows`` (variants of rows whose scores are ``reference``) on an unsaturated scale: the
        head's log-odds of the class ``_importance`` tracks (binary: the positive one; multi-class: the
        one predicted on the reference) before calibration, or the predicted value (regression)."""
        out = self._head_outputs(self.space.encode(rows, hide=self.hidden_), rows).astype(np.float64)
        if self.task_.kind.value == "regression":
            return self.task_.scores(out)
        c = np.full(len(out), self.task_.pos_index) if self.task_.kind.value == "binary" else reference.argmax(axis=1)
        mine = out[np.arange(len(out)), c]
        rest = np.where(np.arange(out.shape[1]) == c[:, None], -np.inf, out)
        top = rest.max(axis=1, keepdims=True)
        return mine - (top[:, 0] + np.log(np.exp(rest - top).sum(axis=1)))

    def _importance(self, cols: list[str], scores: np.ndarray, occluded: np.ndarray) -> list[dict]:
        """Signed per-row importance of each of ``cols``: how far the row's score moves when the column
        is hidden (``occluded[j]``: the head's outputs with column j hidden)."""
        track = self.task_.row_score(scores, scores)
        imp = np.zeros((len(scores), len(cols)))
        for j in range(len(cols)):
            imp[:, j] = track - self.task_.row_score(self.task_.scores(occluded[j]), scores)
        return [{c: round(float(v), 6) for c, v in sorted(zip(cols, row), key=lambda t: -abs(t[1]))} for row in imp]

    # ------------------------------------------------------------------ save / load

    def _fitted_state(self) -> dict:
        return {"kind": self.task_.kind.value, "hidden": list(self.hidden_), "fine_tune": self.fine_tune_,
                "head": self.mlp_.shape, "epochs": self.epochs_, "decisions": self.decisions_,
                "task": self.task_.get_state(), "blend_mlp_share": self.blend_,
                "trees": self.trees_.get_state() if self.trees_ is not None else None}

    def save(self, path: str | Path) -> Path:
        """``config.json`` (settings and fitted state, separately), ``model.safetensors`` (the head),
        ``timeline.json`` (epochs and wall-clock facts) and the space under ``embedding_space/``,
        written atomically with a ``manifest.json`` of every file (``featrix_model.io.saving``)."""
        with io.saving(path) as folder:
            self.space.save(folder / "embedding_space", figures=False)
            io.write_json(folder / "config.json", {
                "format": FORMAT, "version": VERSION, "settings": self.settings.to_dict(),
                "fitted": {**self._fitted_state(), "ood": self.ood_.get_state(), "model_version": self.model_version_}})
            io.write_json(folder / "timeline.json", self.timeline_)
            io.save_tensors(folder / "model.safetensors", self.mlp_.state_dict(), {}, format=FORMAT)
            if self.trees_ is not None:  # LightGBM's own text format, inside JSON (never pickle)
                io.write_json(folder / "trees.json", {"format": "lightgbm-text", "model": self.trees_.model_string()})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, tables: dict | None = None) -> "Predictor":
        """``tables``: the child tables a predictor on a ``RelationalSpace`` reads its parents' children
        from (``{table name: DataFrame}``); not needed for a table space. The folder (its space
        included) is checked against its manifest first; anything wrong is an ``io.ArtifactError``."""
        path = Path(path)
        covered = io.verify(path)
        config = path / "config.json"
        doc = io.read_json(config)
        if doc.get("format") != FORMAT:
            raise io.ArtifactError(path, "config.json", f"names format {doc.get('format')!r}, not {FORMAT!r}: the "
                                   "folder holds something other than a predictor", "load it with the class that saved it")
        if doc.get("version") != VERSION:
            raise io.ArtifactError(path, "config.json", f"was written in predictor format version {doc.get('version')}; "
                                   f"this installation reads version {VERSION}", "fit the predictor again")
        settings, fitted = io.fields(doc, config, "settings", "fitted")
        head, task, ood, hidden, fine_tune, epochs, decisions, version = io.fields(
            fitted, config, "head", "task", "ood", "hidden", "fine_tune", "epochs", "decisions", "model_version")
        p = cls(load_space(path / "embedding_space", tables=tables, verify=not covered), PredictorConfig.from_dict(settings))
        try:
            p.mlp_ = PredictorMLP(**head)
            p.task_, p.ood_ = task_from_state(task), OODDetector.from_state(ood)
        except (KeyError, TypeError, ValueError) as e:
            raise io.ArtifactError(path, "config.json", f"does not describe a fitted predictor ({type(e).__name__}: "
                                   f"{e})") from None
        weights = path / "model.safetensors"
        io.load_weights(p.mlp_, io.load_tensors(weights)[0], weights)
        p.mlp_.eval()
        p.hidden_, p.fine_tune_, p.epochs_ = tuple(hidden), fine_tune, epochs
        p.decisions_, p.model_version_ = decisions, version
        p.trees_, p.blend_ = None, float(fitted.get("blend_mlp_share", 1.0))  # before trees: the MLP alone
        if fitted.get("trees"):
            try:
                p.trees_ = BoostedHead.from_state(fitted["trees"], io.read_json(path / "trees.json")["model"])
            except Exception as e:  # noqa: BLE001 (LightGBM's own errors are plain Exceptions)
                raise io.ArtifactError(path, "trees.json", f"does not hold the predictor's trees ({type(e).__name__}: "
                                       f"{e})", "fit the predictor again") from None
        p.timeline_ = io.read_json(path / "timeline.json")
        return p


def _rows(rows, method: str) -> pd.DataFrame:
    """``rows`` as a frame of at least one row: a DataFrame, a dict or Series (one row) or a list of
    dicts (rows); anything else is a TypeError, no rows a ValueError, both saying what was given."""
    given = "an empty DataFrame (0 rows)" if isinstance(rows, pd.DataFrame) else f"an empty {type(rows).__name__}"
    if isinstance(rows, dict):
        rows = pd.DataFrame([rows])
    elif isinstance(rows, pd.Series):
        rows = rows.to_frame().T
    elif isinstance(rows, (list, tuple)) and all(isinstance(r, dict) for r in rows):
        rows = pd.DataFrame(list(rows))
    elif not isinstance(rows, pd.DataFrame):
        given = "None" if rows is None else f"a value of type {type(rows).__name__}"
        if isinstance(rows, (list, tuple)):
            kinds = sorted({type(r).__name__ for r in rows if not isinstance(r, dict)})
            given = f"a {type(rows).__name__} holding {', '.join(kinds)} items, not only dicts"
        elif isinstance(rows, str):
            given = f"a string ({rows[:40]!r})"
        raise TypeError(f"Predictor.{method} expects a pandas DataFrame, a dict (one row) or a list of dicts "
                        f"(one per row); got {given}.")
    if len(rows) == 0:
        raise ValueError(f"Predictor.{method} got {given}: give at least one row to predict.")
    return rows.reset_index(drop=True)
