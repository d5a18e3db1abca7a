"""Predictor safety (spec §4.3, §18): OOD distance, confidence labels, warnings, failure modes."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


class OODDetector:
    """Distance of a row embedding from the training centroid, in σ above the mean training distance.

    Spec §4.3: < 2σ normal, 2σ–3σ warning, > 3σ strong warning. The distance is Mahalanobis (the
    training embeddings' covariance, ridge-regularised): on the unit sphere plain Euclidean distance
    to the centroid barely moves for inputs unlike anything seen (measured: a row of 1e6 values sat
    at 1.6σ), while directions the training rows never vary in are exactly where such inputs land.
    """

    def fit(self, train_embeddings: np.ndarray) -> "OODDetector":
        x = train_embeddings.astype(np.float64)
        self.centroid_ = x.mean(axis=0)
        cov = np.cov(x - self.centroid_, rowvar=False) + 1e-4 * np.eye(x.shape[1])
        self.precision_ = np.linalg.inv(cov)
        d = self._distance(x)
        self.mean_, self.std_ = float(d.mean()), float(max(d.std(), 1e-8))
        return self

    def _distance(self, x: np.ndarray) -> np.ndarray:
        c = x.astype(np.float64) - self.centroid_
        return np.sqrt(np.einsum("ij,jk,ik->i", c, self.precision_, c).clip(min=0))

    def sigma(self, embeddings: np.ndarray) -> np.ndarray:
        return (self._distance(embeddings) - self.mean_) / self.std_

    def get_state(self) -> dict:
        return {"centroid": self.centroid_.tolist(), "precision": self.precision_.tolist(), "mean": self.mean_,
                "std": self.std_}

    @classmethod
    def from_state(cls, s: dict) -> "OODDetector":
        o = cls()
        o.centroid_, o.precision_ = np.asarray(s["centroid"]), np.asarray(s["precision"])
        o.mean_, o.std_ = s["mean"], s["std"]
        return o


def ood_warning(sigma: float) -> str | None:
    if sigma > 3:
        return (f"Row embedding distance = {sigma:.1f}σ above mean. Input is unlike training data. "
                "Prediction uncertainty is high.")
    if sigma > 2:
        return f"Row embedding distance = {sigma:.1f}σ above mean. Input is somewhat unlike training data."
    return None


def confidence_label(top_probability: float | None, sigma: float, interval_width_ratio: float | None = None) -> str:
    """high / medium / low from how decisive the calibrated output is and how familiar the input is."""
    if sigma > 3:
        return "low"
    if top_probability is not None:
        level = "high" if top_probability >= 0.8 else "medium" if top_probability >= 0.6 else "low"
    else:  # regression: interval width relative to the target's spread
        r = interval_width_ratio if interval_width_ratio is not None else 1.0
        level = "high" if r < 0.5 else "medium" if r < 1.5 else "low"
    if sigma > 2 and level == "high":
        level = "medium"
    return level


def predictor_failures(probs: np.ndarray, labels: np.ndarray, pos_index: int | None = None,
                       decisions: np.ndarray | None = None) -> list[str]:
    """Spec §18 failure modes on validation outputs. ``probs`` (n, k) calibrated or raw softmax;
    ``decisions`` the predicted class indices (default argmax; after training, the threshold's).

    SINGLE_CLASS_BIAS: > 95 % of predictions in one class *and* that share exceeds the class's true
    share by more than 2 points — on a 97/3 task predicting the majority 97 % of the time is right."""
    out = []
    probs = np.nan_to_num(probs, nan=1.0 / probs.shape[1])
    k = probs.shape[1]
    p = probs[:, pos_index] if (k == 2 and pos_index is not None) else probs.max(axis=1)
    std = float(p.std())
    if std < 0.005:
        out.append("DEAD_NETWORK")
    elif std < 0.03 or float(p.max() - p.min()) < 0.05:
        out.append("CONSTANT_PROBABILITY")
    pred = probs.argmax(axis=1) if decisions is None else decisions
    shares = np.bincount(pred, minlength=k) / max(len(pred), 1)
    top = int(shares.argmax())
    true_share = float((labels == top).mean()) if len(labels) else 0.0
    if len(pred) and shares[top] > 0.95 and shares[top] > true_share + 0.02 and len(np.unique(labels)) > 1:
        out.append("SINGLE_CLASS_BIAS")
    auc = None
    if k == 2 and pos_index is not None and len(np.unique(labels)) == 2:
        auc = roc_auc_score(labels == pos_index, probs[:, pos_index])
        if auc < 0.55:
            out.append("RANDOM_PREDICTIONS")
        if k == 2 and float(((probs[:, pos_index] > 0.4) & (probs[:, pos_index] < 0.6)).mean()) > 0.7:
            out.append("UNDERCONFIDENT")
        acc = float((pred == labels).mean())
        if auc < 0.65 and acc < 0.6 and std > 0.1:
            out.append("POOR_DISCRIMINATION")
    return out
