"""``Predictor``: a calibrated, explained, guarded model of one target on top of an embedding space
(spec §2.2–2.3, §3.1–3.2, §4.1, §4.3, §17–§18).

    p = Predictor.fit(es, df, target="churned")       # kind, loss, layers, threshold: automatic, with reasons
    p.predict(rows)        # list of dicts valid against schemas/prediction.schema.json
    p.predict_frame(df)    # DataFrame view of the same
    p.save(path); Predictor.load(path)

Inputs are the space's row embeddings computed with the target (and any ``exclude_features``)
*hidden* — replaced by the MARGINAL token the space was trained with — so the target never leaks
into its own features. Feature importance is column occlusion through the same mechanism.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from featrix_model import io
from featrix_model.calibration import Calibrator, best_threshold, expected_calibration_error
from featrix_model.jsonable import to_jsonable
from featrix_model.guardrails import OODDetector, confidence_label, ood_warning, predictor_failures
from featrix_model.predictor_losses import build_loss, choose_loss, class_weights, should_log_transform

log = logging.getLogger("featrix_model")
FORMAT = "featrix-predictor"
MIN_CLASS_SAMPLES = 5
INTERVAL_Z = 1.959964  # 95 % nominal coverage
HEAD_LR, HEAD_WEIGHT_DECAY, HEAD_DROPOUT, PATIENCE = 1e-3, 1e-4, 0.1, 15
RANK_BLEND = 1e-3


class PredictorMLP(nn.Module):
    """Spec §17: Linear(d_model → d_hidden), n residual blocks [Linear + BatchNorm + LeakyReLU + Dropout], head."""

    def __init__(self, d_in: int, d_hidden: int, n_hidden: int, n_out: int, dropout: float = 0.1):
        super().__init__()
        self.inp = nn.Linear(d_in, d_hidden)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(d_hidden, d_hidden), nn.BatchNorm1d(d_hidden),
                                                  nn.LeakyReLU(0.1), nn.Dropout(dropout)) for _ in range(n_hidden))
        self.head = nn.Linear(d_hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for b in self.blocks:
            h = h + b(h)
        return self.head(h)


def detect_kind(y: pd.Series) -> tuple[str, str]:
    v = y.dropna()
    if pd.api.types.is_bool_dtype(v) or v.nunique() == 2:
        return "binary", f"{v.nunique()} distinct values"
    if not pd.api.types.is_numeric_dtype(v):
        return "multiclass", f"{v.nunique()} distinct non-numeric values"
    whole = bool(np.all(np.mod(v.to_numpy(dtype=float), 1) == 0))
    if whole and v.nunique() <= 20:
        return "multiclass", f"{v.nunique()} distinct whole numbers"
    return "regression", f"numeric with {v.nunique()} distinct values"


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


class Predictor:
    def __init__(self, space, mlp: PredictorMLP, config: dict, calibrator: Calibrator | None, ood: OODDetector,
                 timeline: list[dict]):
        self.space, self.mlp, self.config, self.calibrator, self.ood, self.timeline = space, mlp, config, calibrator, ood, timeline

    # ------------------------------------------------------------------ fit

    @classmethod
    def fit(cls, space, df: pd.DataFrame, target: str, kind: str = "auto", positive_label=None,
            cost_false_positive: float | None = None, cost_false_negative: float | None = None,
            fine_tune: bool | None = None, time_budget_s: float | None = None, *, seed: int = 0, loss: str = "auto",
            n_hidden_layers: int | None = None, exclude_features: tuple[str, ...] = (), epochs: int | None = None,
            validation_fraction: float = 0.2, progress: bool = False) -> "Predictor":
        started = time.monotonic()
        if target not in df.columns:
            raise KeyError(f"target {target!r} is not a column of the data; columns: {list(df.columns)}")
        torch.manual_seed(seed)
        df = df.reset_index(drop=True)
        y_raw = df[target]
        keep = y_raw.notna().to_numpy()
        decisions = []
        if not keep.all():
            decisions.append(f"[WARN] {int((~keep).sum()):,} rows have no value for '{target}': they cannot teach the "
                             "predictor and are left out of training (they can still be predicted).")
        df, y_raw = df[keep].reset_index(drop=True), y_raw[keep].reset_index(drop=True)
        if kind == "auto":
            kind, why = detect_kind(y_raw)
            decisions.append(f"kind: {kind} ({why})")
        elif kind == "classification":
            kind = "binary" if y_raw.nunique() == 2 else "multiclass"
        hide = tuple(dict.fromkeys((target, *exclude_features)))
        if fine_tune is None:
            reason = space.fine_tune_reason()
            fine_tune = reason is not None
            if fine_tune:
                decisions.append(f"fine-tune: on ({reason})")
        df = space.prepare(df, hide)  # e.g. children joined once, not once per encode
        if fine_tune:  # the predictor trains on the CPU; a copy keeps the caller's space untouched
            space = copy.deepcopy(space)
            space.net.to("cpu")
        X = space.encode(df, hide=hide)
        cfg = {"target": target, "kind": kind, "hide": list(hide), "seed": seed, "fine_tune": fine_tune,
               "d_model": int(X.shape[1])}
        if kind == "regression":
            y, cfg_y = cls._regression_target(y_raw.to_numpy(dtype=float), decisions)
            cfg.update(cfg_y)
            tr, va = cls._random_split(len(y), validation_fraction, seed)
            n_out, classes = 2, None
        else:
            classes, pos = cls._classes(y_raw, kind, positive_label)
            cfg.update(classes=[to_jsonable(c) for c in classes], positive_label=to_jsonable(pos) if pos is not None else None)
            y = pd.Categorical(y_raw, categories=classes).codes.astype(np.int64)
            tr, va, note = stratified_split(y, validation_fraction, seed)
            decisions.append(f"split: stratified, fixed (never rotated); {note}")
            n_out = len(classes)
        n_hidden, why = cls._choose_depth(X[tr], y[tr], kind, n_hidden_layers)
        decisions.append(f"hidden layers: {n_hidden} ({why})")
        d_hidden = max(64, 2 * X.shape[1])
        mlp = PredictorMLP(X.shape[1], d_hidden, n_hidden, n_out, HEAD_DROPOUT)
        cfg.update(d_hidden=d_hidden, n_hidden=n_hidden, n_out=n_out, dropout=HEAD_DROPOUT)
        if kind == "regression":
            criterion = nn.GaussianNLLLoss()
            cfg["loss"], cfg["loss_reason"] = "gaussian_nll", "regression: predicts mean and variance (intervals)"
        else:
            w = class_weights(y[tr], n_out)
            name, reason = choose_loss(y[tr], n_out, cost_false_positive, cost_false_negative, requested=loss)
            criterion = build_loss(name, torch.tensor(w, dtype=torch.float32))
            cfg.update(loss=name, loss_reason=reason, class_weights=[float(v) for v in w])
            decisions.append(f"loss: {name} ({reason}); class weights sqrt-inverse frequency {np.round(w, 2).tolist()}")
        trainer = _Train(space if fine_tune else None, mlp, criterion, kind, cfg, df if fine_tune else None)
        timeline = trainer.run(X, y, tr, va, epochs=epochs, time_budget_s=time_budget_s, seed=seed)
        decisions += trainer.notes
        logits_va = trainer.logits(X, va)
        if fine_tune:  # the space changed: guardrails must see the embeddings predictions will use
            X = space.encode(df, hide=hide)
        p = cls(space, mlp, cfg, None, OODDetector().fit(X[tr]), timeline)
        if kind == "regression":
            p._fit_interval(logits_va, y[va], decisions)
        else:
            p._calibrate(logits_va, y[va], cost_false_positive, cost_false_negative, decisions)
            if len(va):
                probs_va = p.probabilities(logits_va)
                decided = None
                if kind == "binary":
                    pos = p._pos_index()
                    decided = np.where(probs_va[:, pos] >= cfg["threshold"], pos, 1 - pos)
                failures = predictor_failures(probs_va, y[va], p._pos_index(), decided)
                cfg["final_failures"] = failures
        cfg["class_distribution_train"] = ({str(c): float((y[tr] == i).mean()) for i, c in enumerate(classes)}
                                           if classes is not None else None)
        cfg["decisions"] = decisions
        cfg["fit_seconds"] = round(time.monotonic() - started, 2)
        cfg["model_version"] = f"{target}-{int(time.time())}"
        for d in decisions:
            log.info(d)
        return p

    @staticmethod
    def _classes(y_raw: pd.Series, kind: str, positive_label):
        counts = y_raw.value_counts()
        classes = sorted(counts.index.tolist(), key=lambda c: str(c))
        if kind != "binary":
            return classes, None
        if positive_label is None:
            as_set = {str(c).lower() for c in classes}
            if as_set <= {"0", "1", "true", "false", "1.0", "0.0"}:
                positive_label = next(c for c in classes if str(c).lower() in ("1", "true", "1.0"))
            else:
                positive_label = counts.idxmin()
        if positive_label not in classes:
            raise ValueError(f"positive_label {positive_label!r} is not a value of the target: {classes}")
        return classes, positive_label

    @staticmethod
    def _random_split(n: int, frac: float, seed: int):
        perm = np.random.default_rng(seed).permutation(n)
        k = max(1, int(round(n * frac)))
        return np.sort(perm[k:]), np.sort(perm[:k])

    @staticmethod
    def _regression_target(y: np.ndarray, decisions: list[str]) -> tuple[np.ndarray, dict]:
        log_t, why = should_log_transform(y)
        z = np.log1p(y) if log_t else y
        mu, sd = float(z.mean()), float(z.std() or 1.0)
        decisions.append(f"target transform: {'log1p' if log_t else 'none'} ({why}); standardised")
        return ((z - mu) / sd).astype(np.float32), {"log_target": log_t, "y_mean": mu, "y_std": sd,
                                                    "y_spread": float(np.std(y) or 1.0)}

    @staticmethod
    def _choose_depth(X: np.ndarray, y: np.ndarray, kind: str, requested: int | None) -> tuple[int, str]:
        """Spec §17 automatic architecture: linear-enough → 2, RF ≫ linear → 3–4, < 2K rows → at most 2."""
        if requested is not None:
            return requested, "set by the caller"
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.model_selection import cross_val_score

        n = min(len(X), 2000)
        idx = np.random.default_rng(0).permutation(len(X))[:n]
        Xs, ys = X[idx], y[idx]
        if kind == "regression":
            lin, rf = Ridge(), RandomForestRegressor(n_estimators=60, max_depth=8, random_state=0, n_jobs=1)
        else:
            if np.bincount(ys).min() < 3:
                return 2, "too few samples per class to probe nonlinearity; 2 layers"
            lin = LogisticRegression(max_iter=500)
            rf = RandomForestClassifier(n_estimators=60, max_depth=8, random_state=0, n_jobs=1)
        s_lin = float(cross_val_score(lin, Xs, ys, cv=3).mean())
        s_rf = float(cross_val_score(rf, Xs, ys, cv=3).mean())
        gap = s_rf - s_lin
        depth = 4 if gap > 0.10 else 3 if gap > 0.05 else 2
        why = f"random forest {s_rf:.3f} vs linear {s_lin:.3f} on the embeddings (gap {gap:+.3f})"
        if len(X) < 2000 and depth > 2:
            depth, why = 2, why + "; capped at 2 for < 2K rows"
        return depth, why

    def _pos_index(self) -> int | None:
        if self.config["kind"] != "binary":
            return None
        return self.config["classes"].index(self.config["positive_label"])

    def _calibrate(self, logits: np.ndarray, y: np.ndarray, cfp, cfn, decisions: list[str]) -> None:
        self.calibrator = Calibrator().fit(logits, y)  # < 20 rows or one class → "none", with its reason
        probs = self.probabilities(logits)
        self.config["calibration"] = {"method": self.calibrator.method_, "reason": self.calibrator.reason_,
                                      "scores": self.calibrator.scores_, "ece_after": float(expected_calibration_error(probs, y))}
        decisions.append(f"calibration: {self.calibrator.method_} ({self.calibrator.reason_})")
        if self.config["kind"] == "binary":
            pos = self._pos_index()
            thr, why, metrics = best_threshold(probs[:, pos], (y == pos).astype(int), cfp, cfn)
            self.config.update(threshold=float(thr), threshold_reason=why, threshold_metrics=metrics)
            decisions.append(f"threshold: {thr:.3f} ({why})")

    def _fit_interval(self, out: np.ndarray, y: np.ndarray, decisions: list[str]) -> None:
        """Scale the predicted σ so the 95 % interval covers ~95 % of validation rows."""
        mean, var = out[:, 0], np.exp(out[:, 1])
        r = np.abs(y - mean) / np.sqrt(var)
        scale = float(np.quantile(r, 0.95) / INTERVAL_Z) if len(r) >= 20 else 1.0
        self.config["sigma_scale"] = max(scale, 1e-3)
        decisions.append(f"interval: predicted σ × {scale:.2f} so the 95% interval covers 95% of validation rows")

    # ------------------------------------------------------------------ predict

    def _outputs(self, df: pd.DataFrame, hide_extra: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
        X = self.space.encode(df, hide=tuple(self.config["hide"]) + hide_extra)
        self.mlp.eval()
        with torch.no_grad():
            out = self.mlp(torch.from_numpy(X)).numpy()
        return X, out

    def _scores(self, out: np.ndarray) -> np.ndarray:
        """The number each row's importance is measured on: positive / predicted-class probability or value."""
        if self.config["kind"] == "regression":
            return self._value(out[:, 0])
        return self.probabilities(out)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities that keep the model's ranking.

        Isotonic calibration maps scores onto plateaus, and ties there cost ranking quality (measured:
        breast_cancer AUC 0.992 raw → 0.983 after isotonic). A 0.1 % blend with the raw softmax breaks
        the ties in the model's order while moving no probability by more than 0.001.
        """
        z = logits - logits.max(axis=1, keepdims=True)
        raw = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return (1 - RANK_BLEND) * self.calibrator.transform(logits) + RANK_BLEND * raw

    def _value(self, z: np.ndarray) -> np.ndarray:
        v = z * self.config["y_std"] + self.config["y_mean"]
        return np.expm1(v) if self.config["log_target"] else v

    def predict_frame(self, df: pd.DataFrame, explain: bool = True) -> pd.DataFrame:
        return pd.DataFrame(self._responses(df, explain)).drop(columns=["metadata"])

    def predict(self, rows, explain: bool = True) -> list[dict]:
        df = pd.DataFrame([rows]) if isinstance(rows, dict) else pd.DataFrame(rows) if isinstance(rows, list) else rows
        return self._responses(df.reset_index(drop=True), explain)

    def _responses(self, df: pd.DataFrame, explain: bool) -> list[dict]:
        cfg = self.config
        if explain:  # prepared once (children joined), not once per occluded column
            df = self.space.prepare(df, tuple(cfg["hide"]))
        X, out = self._outputs(df)
        sigma = self.ood.sigma(X)
        base = self._scores(out)
        importance = self._importance(df, base, out) if explain else [{} for _ in range(len(df))]
        meta = {"kind": cfg["kind"], "model_version": cfg["model_version"],
                "importance_method": "column occlusion: each column hidden with the space's MARGINAL token; "
                                     "value = score with the column − score without it"}
        res = []
        for i in range(len(df)):
            warnings = [w for w in [ood_warning(float(sigma[i]))] if w]
            r = {"ood_sigma": round(float(sigma[i]), 3), "feature_importance": importance[i], "warnings": warnings}
            if cfg["kind"] == "regression":
                mean_z, sd_z = out[i, 0], math.sqrt(math.exp(out[i, 1])) * cfg["sigma_scale"]
                lo, hi = self._value(np.array([mean_z - INTERVAL_Z * sd_z, mean_z + INTERVAL_Z * sd_z]))
                pred = float(self._value(np.array([mean_z]))[0])
                r.update(prediction=round(pred, 6), confidence_interval=[float(lo), float(hi)],
                         std=float((hi - lo) / (2 * INTERVAL_Z)))
                r["confidence"] = confidence_label(None, float(sigma[i]), (hi - lo) / (4 * cfg["y_spread"]))
                m = {**meta, "interval_coverage": 0.95}
            else:
                probs = base[i]
                classes = cfg["classes"]
                r["probabilities"] = {str(c): round(float(p), 6) for c, p in zip(classes, probs)}
                m = {**meta, "calibration": cfg["calibration"]["method"],
                     "class_distribution_train": cfg["class_distribution_train"]}
                if cfg["kind"] == "binary":
                    pos = self._pos_index()
                    neg = 1 - pos
                    p_pos = float(probs[pos])
                    r["probability"] = round(p_pos, 6)
                    r["prediction"] = classes[pos] if p_pos >= cfg["threshold"] else classes[neg]
                    m.update(positive_label=cfg["positive_label"], optimal_threshold=cfg["threshold"],
                             threshold_reason=cfg["threshold_reason"])
                    if min(cfg["class_distribution_train"].values()) < 0.2:
                        m["note"] = "Model trained on imbalanced data. Threshold optimized for " + (
                            "expected cost." if "cost" in cfg["threshold_reason"] else "F1 score.")
                    r["confidence"] = confidence_label(max(p_pos, 1 - p_pos), float(sigma[i]))
                else:
                    r["prediction"] = classes[int(np.argmax(probs))]
                    r["confidence"] = confidence_label(float(probs.max()), float(sigma[i]))
            r["metadata"] = m
            res.append(to_jsonable(r))
        return res

    def _importance(self, df: pd.DataFrame, base: np.ndarray, out: np.ndarray) -> list[dict]:
        """Signed per-row importance by occluding one column at a time (batched over rows)."""
        cols = [c for c in self.space.plan.columns if c not in self.config["hide"]]
        kind = self.config["kind"]
        if kind == "binary":
            track = base[:, self._pos_index()]
        elif kind == "multiclass":
            pred = base.argmax(axis=1)
            track = base[np.arange(len(base)), pred]
        else:
            track = base
        imp = np.zeros((len(df), len(cols)))
        for j, c in enumerate(cols):
            _, o = self._outputs(df, (c,))
            s = self._scores(o)
            other = s[:, self._pos_index()] if kind == "binary" else s[np.arange(len(s)), pred] if kind == "multiclass" else s
            imp[:, j] = track - other
        return [{c: round(float(v), 6) for c, v in sorted(zip(cols, row), key=lambda t: -abs(t[1]))} for row in imp]

    # ------------------------------------------------------------------ save / load

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.space.save(path / "embedding_space", figures=False)
        io.write_json(path / "config.json", {"format": FORMAT, "version": 1, **self.config,
                                             "calibrator": self.calibrator.get_state() if self.calibrator else None,
                                             "ood": self.ood.get_state()})
        io.write_json(path / "timeline.json", self.timeline)
        io.save_tensors(path / "model.safetensors", self.mlp.state_dict(), {})
        return path

    @classmethod
    def load(cls, path: str | Path, tables: dict | None = None) -> "Predictor":
        """``tables``: the child tables a predictor on a ``RelationalSpace`` reads its parents' children
        from (``{table name: DataFrame}``); not needed for a table space."""
        from featrix_model.loading import load_space

        path = Path(path)
        cfg = io.read_json(path / "config.json")
        if cfg.get("format") != FORMAT:
            raise ValueError(f"{path} is not a saved predictor (format {cfg.get('format')!r}).")
        space = load_space(path / "embedding_space", tables=tables)
        mlp = PredictorMLP(cfg["d_model"], cfg["d_hidden"], cfg["n_hidden"], cfg["n_out"], cfg.get("dropout", 0.1))
        state, _ = io.load_tensors(path / "model.safetensors")
        mlp.load_state_dict(state)
        mlp.eval()
        cal = Calibrator.from_state(cfg.pop("calibrator")) if cfg.get("calibrator") else None
        ood = OODDetector.from_state(cfg.pop("ood"))
        return cls(space, mlp, cfg, cal, ood, io.read_json(path / "timeline.json"))


class _Train:
    """The predictor's training loop: frozen embeddings (default) or fine-tuning the space too."""

    def __init__(self, space, mlp, criterion, kind, cfg, df):
        self.space, self.mlp, self.criterion, self.kind, self.cfg, self.df = space, mlp, criterion, kind, cfg, df
        self.notes: list[str] = []
        self.data = space.transform(df) if space is not None else None

    def _forward(self, X: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        if self.space is None:
            return self.mlp(torch.from_numpy(X[idx]))
        from featrix_model.training.trainer import gather

        t = torch.from_numpy(idx)
        emb, _ = self.space.net(gather(self.data, t), self.space.visibility(len(idx), self.cfg["hide"]))
        return self.mlp(emb)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.kind == "regression":
            return self.criterion(out[:, 0], y, torch.exp(out[:, 1]).clamp(min=1e-4))
        return self.criterion(out, y)

    def logits(self, X: np.ndarray, idx: np.ndarray) -> np.ndarray:
        self.mlp.eval()
        if self.space is not None:
            self.space.net.eval()
        with torch.no_grad():
            return self._forward(X, idx).numpy() if len(idx) else np.zeros((0, self.cfg["n_out"]), np.float32)

    def run(self, X, y, tr, va, epochs, time_budget_s, seed) -> list[dict]:
        g = torch.Generator().manual_seed(seed)
        params = [{"params": self.mlp.parameters(), "lr": HEAD_LR}]
        if self.space is not None:
            params.append({"params": self.space.net.parameters(), "lr": 1e-4})
            self.notes.append("fine-tuning: the space's encoders train too, at 1/10 of the head's learning rate")
        opt = torch.optim.AdamW(params, weight_decay=HEAD_WEIGHT_DECAY)
        bs = int(min(256, max(32, 2 ** round(math.log2(max(32, len(tr) / 50))))))
        steps = max(1, len(tr) // bs)
        epochs = epochs or (200 if self.space is None else 20)
        budget = time_budget_s or (60.0 if self.space is None else 300.0)
        yt = torch.from_numpy(y)
        best, timeline, start, patience = (math.inf, None, 0), [], time.monotonic(), PATIENCE
        for epoch in range(1, epochs + 1):
            self.mlp.train()
            if self.space is not None:
                self.space.net.train()
            order = torch.from_numpy(tr)[torch.randperm(len(tr), generator=g)].numpy()
            total = 0.0
            for b in range(steps):
                idx = order[b * bs:(b + 1) * bs]
                if len(idx) < 2:
                    continue
                loss = self._loss(self._forward(X, idx), yt[idx])
                if not torch.isfinite(loss):
                    self.notes.append(f"epoch {epoch}: skipped a batch with a non-finite loss")
                    continue
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.mlp.parameters(), max(2.0 * float(loss.detach()), 1e-3))
                opt.step()
                total += float(loss.detach())
            entry = {"epoch": epoch, "train_loss": total / steps}
            if len(va):
                out = self.logits(X, va)
                entry["validation_loss"] = float(self._loss(torch.from_numpy(out), yt[va]))
                if self.kind != "regression":
                    probs = torch.softmax(torch.from_numpy(out), 1).numpy()
                    pos = self.cfg["classes"].index(self.cfg["positive_label"]) if self.kind == "binary" else None
                    entry["failures_detected"] = predictor_failures(probs, y[va], pos)
                    if "SINGLE_CLASS_BIAS" in entry["failures_detected"] and hasattr(self.criterion, "gamma"):
                        self.criterion.gamma = max(0.5, self.criterion.gamma * 0.5)
                        self.criterion.min_weight = min(0.5, self.criterion.min_weight + 0.1)
                        entry["corrective_actions"] = [f"FOCAL_ADJUST gamma={self.criterion.gamma:.2f} "
                                                       f"min_weight={self.criterion.min_weight:.2f}"]
                monitored = entry["validation_loss"]
            else:
                monitored = entry["train_loss"]
            timeline.append(entry)
            if monitored < best[0] - 1e-5:
                best = (monitored, (copy.deepcopy(self.mlp.state_dict()),
                                    copy.deepcopy(self.space.net.state_dict()) if self.space is not None else None), epoch)
            if epoch - best[2] >= patience:
                self.notes.append(f"early stop at epoch {epoch} (best validation loss at epoch {best[2]})")
                break
            if time.monotonic() - start > budget:
                self.notes.append(f"time budget {budget:.0f}s reached at epoch {epoch}")
                break
        if best[1] is not None:
            self.mlp.load_state_dict(best[1][0])
            if best[1][1] is not None:
                self.space.net.load_state_dict(best[1][1])
        self.mlp.eval()
        return timeline


