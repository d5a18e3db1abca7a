"""Prediction tasks: everything about a predictor that differs by the kind of target (spec §17, §18, §4.3).

    task = make_task(kind, seed)           # TaskType.BINARY / MULTICLASS / REGRESSION
    y = task.fit_target(y_raw, positive_label, decisions)       # labels → codes, or log/standardise
    tr, va = task.split(y, validation_fraction, decisions)      # stratified, or random
    criterion = task.criterion(y[tr], settings, decisions)      # focal / CE / PR-AUC, or Gaussian NLL
    task.fit_outputs(out_va, y[va], settings, decisions)        # calibration + threshold, or interval
    task.scores(out); task.row_score(scores, reference); task.response(out_i, score_i, sigma_i)
    task.metrics(y_true, predict_frame_output)                 # held-out quality, ``primary_metric`` first

A task's fitted state carries scikit-learn's trailing underscores and round-trips through
``get_state`` / ``task_from_state`` (plain JSON), so a loaded predictor answers exactly as the fitted one.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score, roc_auc_score
from torch import nn

from featrix_model import inputs, intervals
from featrix_model.calibration import Calibrator, best_threshold, expected_calibration_error
from featrix_model.guardrails import confidence_label, predictor_failures
from featrix_model.jsonable import to_jsonable
from featrix_model.predictor_losses import build_loss, choose_loss, class_weights, should_log_transform

MIN_CLASS_SAMPLES = 5
INTERVAL_Z = 1.959964  # 95 % nominal coverage
RANK_BLEND = 1e-3


class TaskType(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


def detect_kind(y: pd.Series) -> tuple[TaskType, str]:
    """Two values → binary; other non-numeric or ≤ 20 whole numbers → multiclass; else regression.
    Text values are numbers when the space's type detection reads them so (``inputs.read_target``);
    the values of such a target that do not parse ("n/a") are missing, and the reason says so."""
    r = inputs.read_target(y)
    v = y[r.usable].dropna() if r.numbers is None else r.numbers.dropna()
    note = f"{r.note}; " if r.note else ""
    if pd.api.types.is_bool_dtype(v) or v.nunique() == 2:
        return TaskType.BINARY, f"{note}{v.nunique()} distinct values"
    if r.numbers is None:
        return TaskType.MULTICLASS, f"{v.nunique()} distinct non-numeric values"
    whole = bool(np.all(np.mod(v.to_numpy(dtype=float), 1) == 0))
    if whole and v.nunique() <= 20:
        classes = y[inputs.class_usable(y, r)].dropna().nunique()
        note = f"{r.note.split('; ')[0]}; " if r.note else ""  # (its text values are classes, not missing)
        return TaskType.MULTICLASS, f"{note}{v.nunique()} distinct whole numbers" + (
            f" and {classes - v.nunique()} text value(s), each a class" if classes > v.nunique() else "")
    return TaskType.REGRESSION, f"{note}numeric with {v.nunique()} distinct values"


def resolve_kind(kind: str, y: pd.Series) -> tuple[TaskType, str | None]:
    """The caller's ``kind`` ("auto", "classification" or a TaskType value) as a TaskType, with the
    detection reason when it was detected. A target nothing can be learned from (no values, ±inf, one
    value) is refused here, naming the target and what to do (``inputs.check_target``)."""
    r = inputs.check_target(y)
    if kind == "auto":
        return detect_kind(y)
    if kind == "classification":
        return (TaskType.BINARY if y[inputs.class_usable(y)].nunique() == 2 else TaskType.MULTICLASS), None
    return TaskType(kind), None


def stratified_split(y: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Spec §4.1/§13: per-class split; classes under MIN_CLASS_SAMPLES all go to training."""
    rng = np.random.default_rng(seed)
    tr, va, rare = [], [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        if len(idx) < MIN_CLASS_SAMPLES:
            tr.append(idx)
            rare.append(len(idx))
            continue
        k = max(1, int(round(len(idx) * frac)))
        va.append(idx[:k])
        tr.append(idx[k:])
    tr, va = np.sort(np.concatenate(tr)), np.sort(np.concatenate(va)) if va else np.array([], int)
    coverage = 1 - sum(rare) / len(y)
    note = (f"{coverage:.1%} of samples can be validated" +
            (f", {sum(rare)} samples excluded across {len(rare)} rare categories" if rare else ""))
    return tr, va, note


def random_split(n: int, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    k = max(1, int(round(n * frac)))
    return np.sort(perm[k:]), np.sort(perm[:k])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def softmax_t(logits: np.ndarray) -> np.ndarray:
    """Softmax through torch, as the training loop has always monitored it."""
    return torch.softmax(torch.from_numpy(logits), 1).numpy()


class Task:
    """What a predictor asks of its task, in the order of a fit:

    ``fit_target`` (raw target → training labels), ``split`` (train / validation indices), ``n_out``
    (the head's outputs), ``probe_models`` (the depth probe's linear and forest estimators),
    ``criterion`` (the loss), ``monitor`` (per-epoch timeline fields), ``fit_outputs`` (calibration or
    interval scale on the validation outputs); then for predictions ``scores`` (per-row numbers the
    responses read), ``row_score`` (the one number importance tracks), ``response`` and
    ``response_metadata``; for callers ``metrics``, ``primary_metric``, ``higher_is_better``, ``summary``.
    Fitted attributes are named in ``STATE`` and saved by ``get_state``.
    """

    kind: TaskType
    primary_metric: str
    higher_is_better: bool
    STATE: tuple[str, ...] = ()

    def __init__(self, seed: int = 0):
        self.seed = seed
        for k in self.STATE:
            setattr(self, k, None)

    def get_state(self) -> dict:
        return {"kind": self.kind.value, "seed": self.seed, **{k: getattr(self, k) for k in self.STATE}}

    def set_state(self, state: dict) -> None:
        for k in self.STATE:
            setattr(self, k, state.get(k))


class ClassificationTask(Task):
    """Multi-class targets (and, through ``BinaryTask``, binary ones): classes, stratified split,
    class-weighted focal / cross-entropy / PR-AUC loss, calibrated probabilities."""

    kind, primary_metric, higher_is_better = TaskType.MULTICLASS, "accuracy", True
    STATE = ("classes_", "positive_label_", "class_weights_", "loss_", "loss_reason_", "calibration_",
             "class_distribution_train_", "final_failures_")

    # ------------------------------------------------------------------ target, split, loss

    def fit_target(self, y_raw: pd.Series, positive_label, decisions: list[str]) -> np.ndarray:
        """Class codes; a number target's values that are not numbers are missing (code -1, never split)."""
        y_raw = inputs.usable_target(y_raw, decisions, as_classes=True)
        counts = y_raw.value_counts()
        classes = sorted(counts.index.tolist(), key=lambda c: str(c))
        pos = self._positive(classes, counts, positive_label)
        self.classes_ = [to_jsonable(c) for c in classes]
        self.positive_label_ = to_jsonable(pos) if pos is not None else None
        return pd.Categorical(y_raw, categories=classes).codes.astype(np.int64)

    def _positive(self, classes: list, counts: pd.Series, positive_label):
        return None

    @property
    def n_out(self) -> int:
        return len(self.classes_)

    @property
    def pos_index(self) -> int | None:
        return None

    def split(self, y: np.ndarray, frac: float, decisions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero(y >= 0)  # rows without a usable target (code -1) are neither trained nor validated
        tr, va, note = stratified_split(y[rows], frac, self.seed)
        tr, va = rows[tr], rows[va]
        decisions.append(f"split: stratified, fixed (never rotated); {note}")
        self.class_distribution_train_ = {str(c): float((y[tr] == i).mean()) for i, c in enumerate(self.classes_)}
        return tr, va

    def criterion(self, y_tr: np.ndarray, settings, decisions: list[str]) -> nn.Module:
        w = class_weights(y_tr, self.n_out)
        name, reason = choose_loss(y_tr, self.n_out, settings.cost_false_positive, settings.cost_false_negative,
                                   requested=settings.loss)
        self.loss_, self.loss_reason_, self.class_weights_ = name, reason, [float(v) for v in w]
        decisions.append(f"loss: {name} ({reason}); class weights sqrt-inverse frequency {np.round(w, 2).tolist()}")
        return build_loss(name, torch.tensor(w, dtype=torch.float32))

    def probe_models(self, y: np.ndarray, seed: int):
        """(linear, forest) estimators for the depth probe, or why the labels cannot be probed."""
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression

        if np.bincount(y).min() < 3:
            return "too few samples per class to probe nonlinearity; 2 layers"
        return LogisticRegression(max_iter=500), RandomForestClassifier(n_estimators=60, max_depth=8,
                                                                         random_state=seed, n_jobs=1)

    def monitor(self, out: np.ndarray, y: np.ndarray, criterion: nn.Module) -> dict:
        """Per-epoch failure modes on the raw softmax; SINGLE_CLASS_BIAS softens a focal loss (spec §4.2)."""
        entry = {"failures_detected": predictor_failures(softmax_t(out), y, self.pos_index)}
        if "SINGLE_CLASS_BIAS" in entry["failures_detected"] and hasattr(criterion, "gamma"):
            criterion.gamma = max(0.5, criterion.gamma * 0.5)
            criterion.min_weight = min(0.5, criterion.min_weight + 0.1)
            entry["corrective_actions"] = [f"FOCAL_ADJUST gamma={criterion.gamma:.2f} "
                                           f"min_weight={criterion.min_weight:.2f}"]
        return entry

    # ------------------------------------------------------------------ outputs

    def fit_outputs(self, logits: np.ndarray, y: np.ndarray, settings, decisions: list[str]) -> None:
        """Calibrate on the validation rows (< 20 rows or one class → "none", with its reason), then
        the decision threshold (binary), then the final failure check on the decisions made."""
        self.calibrator_ = Calibrator(seed=self.seed).fit(logits, y)
        probs = self.probabilities(logits)
        c = self.calibrator_
        self.calibration_ = {"method": c.method_, "reason": c.reason_, "scores": c.scores_,
                             "ece_after": float(expected_calibration_error(probs, y))}
        decisions.append(f"calibration: {c.method_} ({c.reason_})")
        self._fit_threshold(probs, y, settings, decisions)
        if len(y):
            self.final_failures_ = predictor_failures(probs, y, self.pos_index, self.decide(probs))

    def _fit_threshold(self, probs, y, settings, decisions) -> None:
        pass

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities that keep the model's ranking.

        Isotonic calibration maps scores onto plateaus, and ties there cost ranking quality (measured:
        breast_cancer AUC 0.992 raw → 0.983 after isotonic). A 0.1 % blend with the raw softmax breaks
        the ties in the model's order while moving no probability by more than 0.001.
        """
        return (1 - RANK_BLEND) * self.calibrator_.transform(logits) + RANK_BLEND * softmax(logits)

    def decide(self, probs: np.ndarray) -> np.ndarray:
        return probs.argmax(axis=1)

    scores = probabilities  # what importance and responses read

    def row_score(self, scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """The predicted class's probability (the class predicted on ``reference``, the unoccluded scores)."""
        return scores[np.arange(len(scores)), reference.argmax(axis=1)]

    def response(self, out: np.ndarray, probs: np.ndarray, sigma: float) -> dict:
        r = {"probabilities": {str(c): round(float(p), 6) for c, p in zip(self.classes_, probs)}}
        r["prediction"] = self.classes_[int(np.argmax(probs))]
        r["confidence"] = confidence_label(float(probs.max()), sigma)
        return r

    def response_metadata(self) -> dict:
        return {"calibration": self.calibration_["method"], "class_distribution_train": self.class_distribution_train_}

    # ------------------------------------------------------------------ reporting

    def metrics(self, y_true, frame: pd.DataFrame) -> dict:
        t, p = pd.Series(np.asarray(y_true)).astype(str), frame["prediction"].astype(str)
        return {"accuracy": float(accuracy_score(t, p)), "macro_f1": float(f1_score(t, p, average="macro"))}

    def summary(self) -> dict:
        return {"classes": self.classes_, "positive_label": self.positive_label_, "loss": self.loss_,
                "loss_reason": self.loss_reason_, "class_weights": self.class_weights_,
                "calibration": self.calibration_, "class_distribution_train": self.class_distribution_train_,
                "final_failures": self.final_failures_}

    def get_state(self) -> dict:
        return {**super().get_state(), "calibrator": self.calibrator_.get_state()}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.calibrator_ = Calibrator.from_state(state["calibrator"])


class BinaryTask(ClassificationTask):
    """Two classes: a positive label, a decision threshold (F1-optimal or cost-minimising) and ROC AUC."""

    kind, primary_metric = TaskType.BINARY, "roc_auc"
    STATE = ClassificationTask.STATE + ("threshold_", "threshold_reason_", "threshold_metrics_")

    def _positive(self, classes: list, counts: pd.Series, positive_label):
        if positive_label is None:
            as_set = {str(c).lower() for c in classes}
            if as_set <= {"0", "1", "true", "false", "1.0", "0.0"}:
                positive_label = next(c for c in classes if str(c).lower() in ("1", "true", "1.0"))
            else:
                positive_label = counts.idxmin()
        if positive_label not in classes:
            raise ValueError(f"positive_label {positive_label!r} is not a value of the target: {classes}")
        return positive_label

    @property
    def pos_index(self) -> int:
        return self.classes_.index(self.positive_label_)

    def _fit_threshold(self, probs, y, settings, decisions) -> None:
        pos = self.pos_index
        thr, why, metrics = best_threshold(probs[:, pos], (y == pos).astype(int), settings.cost_false_positive,
                                           settings.cost_false_negative)
        self.threshold_, self.threshold_reason_, self.threshold_metrics_ = float(thr), why, metrics
        decisions.append(f"threshold: {thr:.3f} ({why})")

    def decide(self, probs: np.ndarray) -> np.ndarray:
        pos = self.pos_index
        return np.where(probs[:, pos] >= self.threshold_, pos, 1 - pos)

    def row_score(self, scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
        return scores[:, self.pos_index]

    def response(self, out: np.ndarray, probs: np.ndarray, sigma: float) -> dict:
        pos = self.pos_index
        p_pos = float(probs[pos])
        r = {"probabilities": {str(c): round(float(p), 6) for c, p in zip(self.classes_, probs)},
             "probability": round(p_pos, 6),
             "prediction": self.classes_[pos] if p_pos >= self.threshold_ else self.classes_[1 - pos]}
        r["confidence"] = confidence_label(max(p_pos, 1 - p_pos), sigma)
        return r

    def response_metadata(self) -> dict:
        m = {**super().response_metadata(), "positive_label": self.positive_label_,
             "optimal_threshold": self.threshold_, "threshold_reason": self.threshold_reason_}
        if min(self.class_distribution_train_.values()) < 0.2:
            m["note"] = "Model trained on imbalanced data. Threshold optimized for " + (
                "expected cost." if "cost" in self.threshold_reason_ else "F1 score.")
        return m

    def is_positive(self, labels) -> np.ndarray:
        """True where a label (raw, as in the data or in a prediction frame) is the positive class."""
        return (pd.Series(np.asarray(labels)).astype(str) == str(self.positive_label_)).to_numpy()

    def metrics(self, y_true, frame: pd.DataFrame) -> dict:
        t, p = self.is_positive(y_true), self.is_positive(frame["prediction"])
        auc = float(roc_auc_score(t, frame["probability"].to_numpy(float))) if len(np.unique(t)) == 2 else None
        return {"accuracy": float(accuracy_score(t, p)), "macro_f1": float(f1_score(t, p, average="macro")), "roc_auc": auc}

    def summary(self) -> dict:
        return {**super().summary(), "threshold": self.threshold_, "threshold_reason": self.threshold_reason_,
                "threshold_metrics": self.threshold_metrics_}


class _GaussianOutputs(nn.Module):
    """The head's two outputs read as (mean, log variance) under a Gaussian NLL."""

    def __init__(self):
        super().__init__()
        self.nll = nn.GaussianNLLLoss()

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.nll(out[:, 0], y, torch.exp(out[:, 1]).clamp(min=1e-4))


class RegressionTask(Task):
    """Numeric targets: optional log1p + standardisation, random split, Gaussian NLL on (mean, log var),
    and split-conformal 90 % / 95 % intervals from the validation rows (``intervals``)."""

    kind, primary_metric, higher_is_better = TaskType.REGRESSION, "rmse", False
    STATE = ("log_target_", "y_mean_", "y_std_", "y_spread_", "sigma_scale_", "conformal_", "loss_", "loss_reason_")
    n_out = 2

    def fit_target(self, y_raw: pd.Series, positive_label, decisions: list[str]) -> np.ndarray:
        """Standardised (log1p first when heavy-tailed) numbers; values that are not numbers are NaN
        (never split). A target that does not read as numbers is refused with what to do instead."""
        y = inputs.target_numbers(y_raw, decisions)
        ok = np.isfinite(y)
        log_t, why = should_log_transform(y[ok])
        z = np.log1p(y) if log_t else y
        mu, sd = float(z[ok].mean()), float(z[ok].std() or 1.0)
        decisions.append(f"target transform: {'log1p' if log_t else 'none'} ({why}); standardised")
        self.log_target_, self.y_mean_, self.y_std_, self.y_spread_ = log_t, mu, sd, float(np.std(y[ok]) or 1.0)
        return ((z - mu) / sd).astype(np.float32)

    def split(self, y: np.ndarray, frac: float, decisions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero(np.isfinite(y))  # rows whose target is not a number are neither trained nor validated
        tr, va = random_split(len(rows), frac, self.seed)
        tr, va = rows[tr], rows[va]
        decisions.append(f"split: random, fixed (never rotated); {len(tr):,} training / {len(va):,} validation rows")
        return tr, va

    def criterion(self, y_tr: np.ndarray, settings, decisions: list[str]) -> nn.Module:
        self.loss_, self.loss_reason_ = "gaussian_nll", "regression: predicts mean and variance (intervals)"
        return _GaussianOutputs()

    def probe_models(self, y: np.ndarray, seed: int):
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.linear_model import Ridge

        return Ridge(), RandomForestRegressor(n_estimators=60, max_depth=8, random_state=seed, n_jobs=1)

    def monitor(self, out: np.ndarray, y: np.ndarray, criterion: nn.Module) -> dict:
        return {}

    def fit_outputs(self, out: np.ndarray, y: np.ndarray, settings, decisions: list[str]) -> None:
        """Split-conformal quantiles of the validation rows' residual / predicted σ, one per level
        (``intervals.LEVELS``); ``std`` is the 95 % half-width over 1.96."""
        mean, var = out[:, 0], np.exp(out[:, 1])
        self.conformal_ = intervals.conformal_quantiles(np.abs(y - mean) / np.sqrt(var), decisions)
        self.sigma_scale_ = max(self.conformal_[intervals.key(intervals.PRIMARY)] / INTERVAL_Z, 1e-3)

    def value(self, z: np.ndarray) -> np.ndarray:
        v = z * self.y_std_ + self.y_mean_
        return np.expm1(v) if self.log_target_ else v

    def scores(self, out: np.ndarray) -> np.ndarray:
        return self.value(out[:, 0])

    def row_score(self, scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
        return scores

    def _quantiles(self) -> dict[str, float]:
        # a predictor saved before split-conformal intervals: its 95 % scale
        return self.conformal_ or {intervals.key(intervals.PRIMARY): self.sigma_scale_ * INTERVAL_Z}

    def response(self, out: np.ndarray, value: float, sigma: float) -> dict:
        mean_z, sd_z = out[0], math.sqrt(math.exp(out[1]))
        bounds = {k: [float(v) for v in self.value(np.array([mean_z - q * sd_z, mean_z + q * sd_z]))]
                  for k, q in self._quantiles().items()}
        lo, hi = bounds[intervals.key(intervals.PRIMARY)]
        pred = float(self.value(np.array([mean_z]))[0])
        r = {"prediction": round(pred, 6), "confidence_interval": [lo, hi], "intervals": bounds,
             "std": float((hi - lo) / (2 * INTERVAL_Z))}
        r["confidence"] = confidence_label(None, sigma, (hi - lo) / (4 * self.y_spread_))
        return r

    def response_metadata(self) -> dict:
        return {"interval_coverage": intervals.PRIMARY, "interval_levels": [float(k) / 100 for k in self._quantiles()],
                "interval_method": "split-conformal on the validation rows (residual / predicted σ)"
                if self.conformal_ is not None else "predicted σ scaled to cover 95 % of the validation rows"}

    def metrics(self, y_true, frame: pd.DataFrame) -> dict:
        """RMSE and R²; with the responses' intervals also their empirical coverage on these rows."""
        t, p = np.asarray(y_true, dtype=float), frame["prediction"].to_numpy(float)
        return {"rmse": float(np.sqrt(mean_squared_error(t, p))), "r2": float(r2_score(t, p)),
                **intervals.coverages(t, frame)}

    def summary(self) -> dict:
        return {"loss": self.loss_, "loss_reason": self.loss_reason_, "log_target": self.log_target_,
                "y_mean": self.y_mean_, "y_std": self.y_std_, "sigma_scale": self.sigma_scale_,
                "conformal_quantiles": self._quantiles()}


TASKS = {TaskType.BINARY: BinaryTask, TaskType.MULTICLASS: ClassificationTask, TaskType.REGRESSION: RegressionTask}


def make_task(kind: TaskType, seed: int = 0) -> Task:
    return TASKS[TaskType(kind)](seed)


def task_from_state(state: dict) -> Task:
    task = make_task(TaskType(state["kind"]), state["seed"])
    task.set_state(state)
    return task
