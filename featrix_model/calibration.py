"""Probability calibration and decision thresholds: spec §17 "Probability Calibration", §4.3, §18.

Spec §17: "After training, calibration is auto-fit on the validation set:"

    Temperature Scaling  Single parameter T dividing logits  Most common, simple
    Platt Scaling        Logistic regression on logits       Better for small datasets
    Isotonic Regression  Non-parametric monotonic mapping    Complex calibration curves

"For binary classification, the system finds the F1-optimal threshold on validation data."
Spec §4.3: calibrated "so that '70%' means '70% chance'"; "Threshold optimized for F1 score."

Methods (``Calibrator``):

* ``none``: ``softmax(logits)``.
* ``temperature``: ``softmax(logits / T)``, T fitted by NLL (bounded Brent search over log T).
* ``platt``: binary - ``sigmoid(a * (z1 - z0) + b)`` by NLL with Platt's smoothed targets
  ((N+ + 1)/(N+ + 2), 1/(N- + 2)); multi-class - vector scaling ``softmax(w * z + b)`` (per-class
  scale and bias, L-BFGS on NLL with a 1e-4 L2 pull towards identity; Guo et al. 2017).
* ``isotonic``: binary - sklearn ``IsotonicRegression`` on the positive-class probability;
  multi-class - one-vs-rest isotonic per class, rows renormalised. Stored as thresholds and
  replayed with ``np.interp`` (identical to sklearn's linear ``predict`` with clipping). Outputs
  are clipped to ``[eps, 1 - eps]``, ``eps = 1 / (n_fit + 2)``, so one empty-class block cannot
  give an infinite NLL.

Selection: every method is scored on the same validation rows by *out-of-fold* predictions from
3-fold (stratified, seeded) cross-fitting - fit on two folds, predict the third - so isotonic
cannot win by memorising the rows it is scored on. The lowest NLL wins; methods within
``NLL_TIE`` (1e-3 nats) of it are a tie, broken by the lower ECE. The winner is refitted on all
validation rows.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_softmax, softmax
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold, StratifiedKFold

METHODS = ("none", "temperature", "platt", "isotonic")
NLL_TIE = 1e-3
MIN_ROWS = 20


def _as_logits(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.shape[1] == 1:  # single binary logit -> [0, z]
        z = np.concatenate([np.zeros_like(z), z], axis=1)
    return z


def _nll(probs: np.ndarray, labels: np.ndarray) -> float:
    p = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


def expected_calibration_error(probs, labels, n_bins: int = 15) -> float:
    """ECE with ``n_bins`` equal-width bins: ``sum_b (n_b / n) |mean(conf_b) - mean(hit_b)|``.

    Binary (``(n, 2)`` or a 1-D positive probability): bins on the positive-class probability
    against the observed positive rate. Multi-class: top-label confidence against accuracy.
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels).astype(np.int64).ravel()
    if probs.ndim == 1 or probs.shape[1] <= 2:
        conf = probs if probs.ndim == 1 else probs[:, -1]
        hit = (labels == 1).astype(np.float64)
    else:
        conf, hit = probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(np.float64)
    if len(conf) == 0:
        return 0.0
    idx = np.clip((conf * n_bins).astype(np.int64), 0, n_bins - 1)
    n = np.bincount(idx, minlength=n_bins)
    gap = np.abs(np.bincount(idx, conf, n_bins) - np.bincount(idx, hit, n_bins))
    return float(gap.sum() / len(conf)) if n.sum() else 0.0


def _fit(method: str, z: np.ndarray, y: np.ndarray) -> dict:
    k = z.shape[1]
    if method == "none":
        return {}
    if method == "temperature":
        res = minimize_scalar(lambda lt: _nll(softmax(z / np.exp(lt), axis=1), y), bounds=(-4.0, 4.0),
                              method="bounded", options={"xatol": 1e-6})
        return {"T": float(np.exp(res.x))}
    if method == "platt" and k == 2:
        d = z[:, 1] - z[:, 0]
        n_pos = float((y == 1).sum())
        t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1.0 / (len(y) - n_pos + 2))

        def f(p):
            s = p[0] * d + p[1]
            r = expit(s) - t
            return float(np.mean(np.logaddexp(0, s) - t * s)), np.array([np.mean(r * d), np.mean(r)])

        res = minimize(f, [1.0, 0.0], jac=True, method="L-BFGS-B")
        return {"a": float(res.x[0]), "b": float(res.x[1])}
    if method == "platt":
        onehot, lam = np.eye(k)[y], 1e-4

        def g(p):
            w, b = p[:k], p[k:]
            s = w * z + b
            r = (softmax(s, axis=1) - onehot) / len(y)
            loss = -np.mean(log_softmax(s, axis=1)[np.arange(len(y)), y]) + lam * (np.sum((w - 1) ** 2) + np.sum(b**2))
            return loss, np.concatenate([(r * z).sum(0) + 2 * lam * (w - 1), r.sum(0) + 2 * lam * b])

        res = minimize(g, np.concatenate([np.ones(k), np.zeros(k)]), jac=True, method="L-BFGS-B")
        return {"w": res.x[:k].tolist(), "b": res.x[k:].tolist()}
    if method == "isotonic":
        p = softmax(z, axis=1)
        cols = [1] if k == 2 else list(range(k))
        maps = []
        for c in cols:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p[:, c], (y == c).astype(float))
            maps.append({"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()})
        return {"maps": maps, "eps": 1.0 / (len(y) + 2)}
    raise ValueError(f"unknown calibration method {method!r}; expected one of {METHODS}")


def _apply(method: str, params: dict, z: np.ndarray) -> np.ndarray:
    k = z.shape[1]
    if method == "none":
        return softmax(z, axis=1)
    if method == "temperature":
        return softmax(z / params["T"], axis=1)
    if method == "platt" and k == 2:
        p1 = expit(params["a"] * (z[:, 1] - z[:, 0]) + params["b"])
        return np.stack([1.0 - p1, p1], axis=1)
    if method == "platt":
        return softmax(np.asarray(params["w"]) * z + np.asarray(params["b"]), axis=1)
    if method == "isotonic":
        p, eps = softmax(z, axis=1), params["eps"]
        cols = [1] if k == 2 else list(range(k))
        q = np.stack([np.clip(np.interp(p[:, c], m["x"], m["y"]), eps, 1 - eps)
                      for c, m in zip(cols, params["maps"])], axis=1)
        if k == 2:
            return np.concatenate([1.0 - q, q], axis=1)
        return q / q.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown calibration method {method!r}")


class Calibrator:
    """Auto-fit calibration (spec §17 "calibration is auto-fit on the validation set").

    ``fit(logits, labels)`` sets ``method_``, ``params_``, ``scores_ = {method: {"nll", "ece"}}``
    (out-of-fold scores) and ``reason_``; ``transform(logits)`` returns probabilities ``(n, k)``.
    """

    def __init__(self, methods=METHODS, n_folds: int = 3, seed: int = 0, n_bins: int = 15):
        self.methods, self.n_folds, self.seed, self.n_bins = tuple(methods), n_folds, seed, n_bins
        self.method_, self.params_, self.scores_, self.reason_, self.n_classes_ = "none", {}, {}, "", None

    def fit(self, logits, labels) -> "Calibrator":
        z, y = _as_logits(logits), np.asarray(labels).astype(np.int64).ravel()
        self.n_classes_, n = z.shape[1], len(y)
        counts = np.bincount(y, minlength=self.n_classes_)
        if n < MIN_ROWS or (counts > 0).sum() < 2:
            self.method_, self.params_, self.scores_ = "none", {}, {}
            self.reason_ = f"{n} validation rows, {(counts > 0).sum()} class(es) present: too little to calibrate"
            return self
        strat = counts[counts > 0].min() >= self.n_folds
        splitter = (StratifiedKFold if strat else KFold)(self.n_folds, shuffle=True, random_state=self.seed)
        folds = list(splitter.split(z, y))
        for m in self.methods:
            oof = np.zeros_like(z)
            for tr, te in folds:
                oof[te] = _apply(m, _fit(m, z[tr], y[tr]), z[te])
            self.scores_[m] = {"nll": _nll(oof, y), "ece": expected_calibration_error(oof, y, self.n_bins)}
        best_nll = min(s["nll"] for s in self.scores_.values())
        tied = [m for m in self.methods if self.scores_[m]["nll"] <= best_nll + NLL_TIE]
        self.method_ = min(tied, key=lambda m: self.scores_[m]["ece"])
        self.params_ = _fit(self.method_, z, y)
        s, base = self.scores_[self.method_], self.scores_.get("none")
        self.reason_ = (f"{self.method_}: lowest out-of-fold NLL {s['nll']:.4f} (ECE {s['ece']:.4f}) over "
                        f"{self.n_folds}-fold cross-fitting on {n} validation rows"
                        + (f"; uncalibrated NLL {base['nll']:.4f}, ECE {base['ece']:.4f}" if base else "")
                        + (f"; tie within {NLL_TIE} nats broken by ECE among {tied}" if len(tied) > 1 else ""))
        return self

    def transform(self, logits) -> np.ndarray:
        return _apply(self.method_, self.params_, _as_logits(logits))

    def get_state(self) -> dict:
        return {"method": self.method_, "params": self.params_, "scores": self.scores_, "reason": self.reason_,
                "n_classes": self.n_classes_, "n_folds": self.n_folds, "seed": self.seed, "n_bins": self.n_bins,
                "methods": list(self.methods)}

    @classmethod
    def from_state(cls, state: dict) -> "Calibrator":
        c = cls(methods=state.get("methods", METHODS), n_folds=state.get("n_folds", 3),
                seed=state.get("seed", 0), n_bins=state.get("n_bins", 15))
        c.method_, c.params_, c.scores_ = state["method"], state["params"], state.get("scores", {})
        c.reason_, c.n_classes_ = state.get("reason", ""), state.get("n_classes")
        return c


def _confusion(p: np.ndarray, y: np.ndarray, t: float) -> dict:
    pred = p >= t
    tp, fp = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum())
    fn, tn = int((~pred & (y == 1)).sum()), int((~pred & (y == 0)).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": prec, "recall": rec, "f1": f1,
            "accuracy": (tp + tn) / max(len(y), 1), "positive_rate": float(pred.mean()) if len(y) else 0.0}


def best_threshold(prob_pos, labels01, cost_fp=None, cost_fn=None) -> tuple[float, str, dict]:
    """Decision threshold (predict positive when ``p >= threshold``) on validation data.

    No costs: spec §17 "the F1-optimal threshold on validation data". With ``cost_fp`` and/or
    ``cost_fn`` (a missing one counts as 1.0): minimise ``cost_fp * FP + cost_fn * FN``.
    Candidates are the distinct scores; the returned threshold is the midpoint between the chosen
    score and the next lower one (same validation decisions, more margin on new rows). Ties go to
    the highest threshold. Metrics include ``expected_cost`` (per row) when costs are given.
    """
    p, y = np.asarray(prob_pos, dtype=np.float64).ravel(), np.asarray(labels01).astype(np.int64).ravel()
    use_cost = cost_fp is not None or cost_fn is not None
    cfp, cfn = (1.0 if cost_fp is None else float(cost_fp)), (1.0 if cost_fn is None else float(cost_fn))
    if len(y) == 0 or (not use_cost and y.sum() == 0):
        return 0.5, "no positive validation rows: keeping the default threshold 0.5", _confusion(p, y, 0.5)
    u = np.unique(p)[::-1]  # descending
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    n_at = np.searchsorted(-ps, -u, side="right")  # rows with p >= u_i
    tp = np.cumsum(ys)[n_at - 1].astype(np.float64)
    fp, fn = n_at - tp, y.sum() - tp
    if use_cost:  # index 0 = predict nothing positive, then one candidate per distinct score
        obj = np.concatenate([[-cfn * y.sum()], -(cfp * fp + cfn * fn)])
    else:
        obj = np.concatenate([[-np.inf], 2 * tp / np.maximum(2 * tp + fp + fn, 1)])
    i = int(np.argmax(obj)) - 1
    if i < 0:
        t = float(np.nextafter(u[0], np.inf))
    else:
        t = float((u[i] + u[i + 1]) / 2) if i + 1 < len(u) else 0.0
    m, m05 = _confusion(p, y, t), _confusion(p, y, 0.5)
    if use_cost:
        for d in (m, m05):
            d["expected_cost"] = (cfp * d["fp"] + cfn * d["fn"]) / len(y)
        reason = (f"cost-minimising threshold {t:.4f} with cost_fp={cfp:g}, cost_fn={cfn:g}: expected cost "
                  f"{m['expected_cost']:.4f}/row vs {m05['expected_cost']:.4f} at 0.5")
    else:
        reason = f"F1-optimal threshold {t:.4f} on {len(y)} validation rows: F1 {m['f1']:.4f} vs {m05['f1']:.4f} at 0.5"
    return t, reason, m


def reliability_curve(probs_pos, labels01, n_bins: int = 10) -> dict:
    """Reliability diagram data: equal-width bins of the positive probability; per bin the mean
    predicted probability, observed positive frequency (``None`` for empty bins) and count."""
    p, y = np.asarray(probs_pos, dtype=np.float64).ravel(), np.asarray(labels01, dtype=np.float64).ravel()
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip((p * n_bins).astype(np.int64), 0, n_bins - 1)
    n = np.bincount(idx, minlength=n_bins)
    sp, sy = np.bincount(idx, p, n_bins), np.bincount(idx, y, n_bins)
    return {"bin_edges": edges.tolist(), "bin_centers": ((edges[:-1] + edges[1:]) / 2).tolist(),
            "mean_predicted": [float(a / c) if c else None for a, c in zip(sp, n)],
            "observed_frequency": [float(a / c) if c else None for a, c in zip(sy, n)],
            "counts": n.astype(int).tolist()}
