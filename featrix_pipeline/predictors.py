"""Predictors declared in the spec: train on a table's space, measure on held-out rows against the
majority/mean and LightGBM baselines (same split), and score every row back into the warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score, roc_auc_score

from featrix_model import load_space
from featrix_model.predictor import Predictor
from featrix_pipeline.relational import model_frame, relational_parents, relational_tables
from featrix_pipeline.spec import DatasetSpec, TargetSpec
from featrix_pipeline.targets import target_values

TEST_FRACTION = 0.2


def training_frame(spec: DatasetSpec, target: TargetSpec, raw: pd.DataFrame, filtered: pd.DataFrame,
                   max_rows: int | None, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """Filtered table + the target column (evaluated on the raw snapshot), at most ``max_rows`` rows."""
    df = filtered.copy()
    df[target.column] = target_values(raw, target).to_numpy()
    notes = []
    if max_rows and len(df) > max_rows:
        df = df.sample(n=max_rows, random_state=seed).reset_index(drop=True)
        notes.append(f"trained on a seeded sample of {max_rows:,} of {len(filtered):,} rows")
    return df, notes


def space_tables(spec: DatasetSpec, table: str, rows: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame] | None:
    """The tables a relational space of ``table`` reads child rows from; None for a table space."""
    return relational_tables(spec, table, rows) if table in relational_parents(spec) else None


def hidden_features(spec: DatasetSpec, target: TargetSpec) -> tuple[str, ...]:
    pk = spec.tables[target.table].primary_key
    return tuple(dict.fromkeys((*target.exclude_features, *(pk if len(pk) == 1 else ()))))


def metrics(kind: str, y_true: np.ndarray, pred: np.ndarray, score: np.ndarray | None) -> dict:
    if kind == "regression":
        return {"rmse": float(np.sqrt(mean_squared_error(y_true, pred))), "r2": float(r2_score(y_true, pred))}
    out = {"accuracy": float(accuracy_score(y_true.astype(str), pred.astype(str))),
           "macro_f1": float(f1_score(y_true.astype(str), pred.astype(str), average="macro"))}
    if kind == "binary" and score is not None and len(np.unique(y_true)) == 2:
        out["roc_auc"] = float(roc_auc_score(y_true, score))
    return out


def primary_metric(kind: str) -> str:
    return {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}[kind]


def lightgbm_baseline(kind: str, X_tr: pd.DataFrame, y_tr, X_te: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    import lightgbm as lgb

    def prep(X):
        X = X.copy()
        for c in X.columns:
            if pd.api.types.is_datetime64_any_dtype(X[c]):
                X[c] = X[c].astype("int64") // 10**9
            elif not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]):
                X[c] = X[c].astype("string").astype("category")
        return X

    tr, te = prep(X_tr), prep(X_te)
    for c in tr.columns:  # the test split must use the training categories
        if isinstance(tr[c].dtype, pd.CategoricalDtype):
            te[c] = pd.Categorical(te[c].astype("string"), categories=tr[c].cat.categories)
    params = {"random_state": seed, "n_jobs": 1, "verbose": -1}
    if kind == "regression":
        m = lgb.LGBMRegressor(**params).fit(tr, y_tr)
        return m.predict(te), None
    m = lgb.LGBMClassifier(**params).fit(tr, y_tr)
    proba = m.predict_proba(te)
    return m.predict(te), (proba[:, list(m.classes_).index(True)] if kind == "binary" else None)


def train_predictor(spec: DatasetSpec, target: TargetSpec, raw: pd.DataFrame, filtered: pd.DataFrame,
                    space_path: str | Path, out_dir: Path, *, max_rows: int | None = 50_000, seed: int = 0,
                    time_budget_s: float | None = None, rows: dict[str, pd.DataFrame] | None = None
                    ) -> tuple[Predictor, dict]:
    """``rows``: filtered rows of the other tables the table's model reads (lookups; children of a
    relational space and their lookups)."""
    df, notes = training_frame(spec, target, raw, filtered, max_rows, seed)
    df = df[df[target.column].notna()].reset_index(drop=True)
    rows = {**(rows or {}), target.table: filtered}
    df = model_frame(spec, target.table, df, rows)
    hide = hidden_features(spec, target)
    es = load_space(space_path, tables=space_tables(spec, target.table, rows))
    test = np.random.default_rng(seed).random(len(df)) < TEST_FRACTION
    train_df, test_df = df[~test].reset_index(drop=True), df[test].reset_index(drop=True)
    p = Predictor.fit(es, train_df, target=target.column, kind=target.kind if target.kind != "auto" else "auto",
                      positive_label=target.positive_label, cost_false_positive=target.cost_false_positive,
                      cost_false_negative=target.cost_false_negative, exclude_features=hide, seed=seed,
                      time_budget_s=time_budget_s)
    p.save(out_dir)
    kind = p.config["kind"]
    resp = p.predict_frame(test_df.drop(columns=[target.column]), explain=False)
    y_te = test_df[target.column].to_numpy()
    if kind == "binary":
        pos = p.config["positive_label"]
        y_true = (pd.Series(y_te).astype(str) == str(pos)).to_numpy()
        ours = metrics(kind, y_true, (resp["prediction"].astype(str) == str(pos)).to_numpy(), resp["probability"].to_numpy())
    else:
        y_true = y_te
        ours = metrics(kind, y_true, resp["prediction"].to_numpy(), None)
    y_train = train_df[target.column].to_numpy()
    if kind == "binary":
        y_train = (train_df[target.column].astype(str) == str(p.config["positive_label"])).to_numpy()
    lgb_train, lgb_test = train_df, test_df
    if hasattr(es, "child_aggregates"):  # relational: LightGBM gets the same per-parent child counts and means
        lgb_train, lgb_test = es.child_aggregates(train_df), es.child_aggregates(test_df)
    features = [c for c in es.plan.columns if c not in hide and c != target.column and c in lgb_train.columns]
    lgb_pred, lgb_score = lightgbm_baseline(kind, lgb_train[features], y_train, lgb_test[features], seed)
    lgbm = metrics(kind, y_true, lgb_pred, lgb_score)
    if kind == "regression":
        base = metrics(kind, y_true, np.full(len(y_true), float(np.mean(train_df[target.column]))), None)
    else:
        majority = train_df[target.column].astype(str).mode()[0] if kind != "binary" else (y_true.mean() > 0.5)
        base = metrics(kind, y_true, np.full(len(y_true), majority), np.full(len(y_true), 0.5) if kind == "binary" else None)
    summary = {"path": str(out_dir), "target": target.name, "kind": kind, "rows_train": int(len(train_df)),
               "rows_test": int(len(test_df)), "features": features, "hidden": list(hide), "notes": notes,
               "metrics": ours, "lightgbm": lgbm, "baseline": base, "primary_metric": primary_metric(kind),
               "loss": p.config.get("loss"), "loss_reason": p.config.get("loss_reason"),
               "threshold": p.config.get("threshold"), "threshold_reason": p.config.get("threshold_reason"),
               "calibration": p.config.get("calibration", {}).get("method"),
               "decisions": p.config["decisions"], "model_version": p.config["model_version"]}
    summary["figures"] = _figures(p, kind, y_true, resp, out_dir)
    return p, summary


def _figures(p: Predictor, kind: str, y_true, resp: pd.DataFrame, out_dir: Path) -> dict:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import confusion_matrix

    from featrix_model.calibration import reliability_curve

    figs = {}
    if kind == "binary":
        curve = reliability_curve(resp["probability"].to_numpy(), np.asarray(y_true).astype(int))
        fig = Figure(figsize=(4.5, 4.5))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], "--", color="grey")
        obs = [np.nan if v is None else v for v in curve["observed_frequency"]]
        ax.plot(curve["mean_predicted"] if "mean_predicted" in curve else curve["bin_centers"], obs, "o-")
        ax.set(xlabel="predicted probability", ylabel="observed frequency", title="Calibration (held-out)")
        FigureCanvasAgg(fig).print_png(str(out_dir / "calibration.png"))
        figs["calibration"] = str(out_dir / "calibration.png")
    if kind != "regression":
        labels = sorted(set(map(str, y_true)) | set(map(str, resp["prediction"])))
        cm = confusion_matrix(pd.Series(y_true).astype(str), resp["prediction"].astype(str), labels=labels)
        fig = Figure(figsize=(5, 4.5))
        ax = fig.add_subplot()
        ax.imshow(cm, cmap="Blues")
        ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted", ylabel="true",
               title="Confusion matrix (held-out)")
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_yticklabels(labels)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8)
        fig.tight_layout()
        FigureCanvasAgg(fig).print_png(str(out_dir / "confusion_matrix.png"))
        figs["confusion_matrix"] = str(out_dir / "confusion_matrix.png")
    return figs


def quality_check(summary: dict, margin: float = 0.02) -> tuple[bool, str]:
    """Beats the majority/mean baseline and trails LightGBM by no more than ``margin`` (relative)."""
    m = summary["primary_metric"]
    ours, lgb, base = summary["metrics"][m], summary["lightgbm"][m], summary["baseline"][m]
    if m == "rmse":
        ok = ours < base and ours <= lgb * (1 + margin)
    else:
        ok = ours > base and ours >= lgb * (1 - margin)
    return ok, (f"{m}: ours {ours:.4f} vs baseline {base:.4f} vs LightGBM {lgb:.4f} "
                f"(allowed to trail LightGBM by {margin:.0%})")


def score_table(spec: DatasetSpec, target: TargetSpec, filtered: pd.DataFrame, predictor_path: str | Path,
                run_id: str, rows: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Every row of the table scored: primary key, prediction, probability/interval, confidence, OOD.
    ``rows``: as for ``train_predictor``."""
    rows = {**(rows or {}), target.table: filtered}
    p = Predictor.load(predictor_path, tables=space_tables(spec, target.table, rows))
    frame = model_frame(spec, target.table, filtered.drop(columns=[target.column], errors="ignore"), rows)
    resp = p.predict_frame(frame, explain=False)
    pk = list(spec.tables[target.table].primary_key)
    out = filtered[pk].reset_index(drop=True).copy()
    out["prediction"] = resp["prediction"].astype(str)
    for col in ("probability",):
        if col in resp:
            out[col] = resp[col].astype(float)
    if "confidence_interval" in resp:
        out["interval_low"] = resp["confidence_interval"].map(lambda v: v[0])
        out["interval_high"] = resp["confidence_interval"].map(lambda v: v[1])
    out["confidence"] = resp["confidence"]
    out["ood_sigma"] = resp["ood_sigma"].astype(float)
    out["warnings"] = resp["warnings"].map(lambda w: "; ".join(w))
    out["run_id"], out["model_version"] = run_id, p.config["model_version"]
    out["scored_at"] = pd.Timestamp(dt.datetime.now(dt.timezone.utc)).tz_localize(None)
    return out
