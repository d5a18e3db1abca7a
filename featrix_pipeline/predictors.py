"""Predictors declared in the spec: train on the space the topology puts under each target, measure
on held-out rows against the baselines (``evaluation``), and score every row for the warehouse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from featrix_model import load_space
from featrix_model.leakage import leaky_columns
from featrix_model.predictor import Predictor
from featrix_model.space import use_threads
from featrix_pipeline import accounting
from featrix_pipeline.evaluation import (SPLIT_SCHEME, held_out_split, key_draws, lightgbm_baseline, naive_baseline,
                                         quality_gate)
from featrix_pipeline.figures import predictor_figures
from featrix_pipeline.expressions import columns_read
from featrix_pipeline.fingerprint import digest, frame_fingerprint, model_code_version, target_identity
from featrix_pipeline.promotion import decide, serving_key, set_serving
from featrix_pipeline.reuse import ArtifactStore, reused
from featrix_pipeline.scoring import row_hashes
from featrix_pipeline.settings import FitSettings
from featrix_pipeline.spaces import trained
from featrix_pipeline.targets import labelled, target_values
from featrix_pipeline.topology import TargetPlan, Topology


LABELS = "labels.parquet"  # every labelled row when a version was trained, for drift and fair comparisons


def version_labels(folder: str | Path) -> pd.DataFrame | None:
    """The labelled rows a stored predictor version kept (``LABELS``), or None when it kept none."""
    path = Path(folder) / LABELS
    return pd.read_parquet(path) if path.exists() else None


def label_hashes(keys: pd.DataFrame, labels) -> pd.Series:
    """A content hash of each row's primary key and label: a row whose label changed is a new row."""
    text = pd.Series(np.asarray(labels, dtype=object)).astype("string").fillna("\x00missing")  # dtype-free
    return row_hashes(keys.reset_index(drop=True).assign(**{"\x00label": text.to_numpy(dtype=object)}))


def labelled_rows(keys: pd.DataFrame, labels: pd.Series, trained_on: bool) -> pd.DataFrame:
    """What a version keeps of the rows it saw: label, key hash, key+label hash, trained on or held out."""
    return pd.DataFrame({"label": labels.to_numpy(), "key_hash": row_hashes(keys.reset_index(drop=True)).to_numpy(),
                         "label_hash": label_hashes(keys, labels).to_numpy(), "trained": trained_on})


def training_frame(plan: TargetPlan, raw: pd.DataFrame, filtered: pd.DataFrame, max_rows: int | None,
                   seed: int) -> tuple[pd.DataFrame, list[str], dict[str, int]]:
    """Filtered table + the target column (evaluated on the raw snapshot): the rows with a target
    value, at most ``max_rows`` of them (the labelled rows with the lowest seeded draws of their keys,
    so the sample moves little as rows arrive). Returns the rows, notes and {reason: rows left out}."""
    df = filtered.copy()
    df[plan.target.column] = target_values(raw, plan.target).to_numpy()
    notes, excluded = [], {}
    usable, unparsed = labelled(df[plan.target.column], plan.target.kind)
    if unparsed:
        notes.append(f"[WARN] {unparsed}")
    unlabelled = ~usable
    if unlabelled.any():
        excluded[accounting.NO_TARGET] = int(unlabelled.sum())
        notes.append(f"[WARN] {int(unlabelled.sum()):,} of {len(df):,} rows have no value for '{plan.target.name}': "
                     "left out of training and of the held-out metrics (they are still scored by the predictions "
                     "asset)")
        df = df[~unlabelled].reset_index(drop=True)
    if max_rows and len(df) > max_rows:
        draws = key_draws(df[list(plan.table.spec.primary_key)], seed + 1)
        excluded[accounting.SAMPLED_OUT_PREDICTOR] = len(df) - max_rows
        notes.append(f"trained on a seeded sample of {max_rows:,} of {len(df):,} labelled rows (predictor_max_rows)")
        df = df.iloc[np.sort(np.argsort(draws, kind="stable")[:max_rows])].reset_index(drop=True)
    return df, notes, excluded


def hidden_reasons(plan: TargetPlan) -> dict[str, str]:
    """Columns the predictor may not use, each with why: the columns a target ``expression`` reads (they
    hand the predictor its answer), the target's ``exclude_features`` and a single-column key."""
    target, row_id = plan.target, plan.table.row_id
    why: dict[str, str] = {}
    if target.expression:
        for c in columns_read(target.expression, target.table):
            why.setdefault(c, f"read by the target expression {target.expression!r}")
    for c in target.exclude_features:
        why.setdefault(c, "listed in the target's exclude_features")
    if row_id:
        why.setdefault(row_id, f"the single-column primary key of '{plan.table.name}': a row identifier")
    return why


def hidden_features(plan: TargetPlan) -> tuple[str, ...]:
    """Columns the predictor may not use (``hidden_reasons``)."""
    return tuple(hidden_reasons(plan))


def hidden_note(plan: TargetPlan) -> str:
    """One note naming every hidden column and why, grouped by reason."""
    groups: dict[str, list[str]] = {}
    for c, why in hidden_reasons(plan).items():
        groups.setdefault(why, []).append(c)
    return "hidden from the predictor: " + "; ".join(f"{cols} ({why})" for why, cols in groups.items())


def child_tables(topology: Topology, plan: TargetPlan, rows: dict[str, pd.DataFrame]) -> dict | None:
    """The tables a relational space reads its parents' children from (None for a table space)."""
    table = plan.table
    return topology.model_tables(table.name, rows) if table.has_relational_space else None


def train_predictor(topology: Topology, plan: TargetPlan, raw: pd.DataFrame, filtered: pd.DataFrame, space: dict,
                    store: ArtifactStore, settings: FitSettings, run_id: str = "",
                    rows: dict[str, pd.DataFrame] | None = None) -> dict:
    """Train (or reuse) a target's predictor, measure it on held-out rows, and promote it over the
    serving version only when it is no worse on those rows. Returns the serving version's summary
    with the candidate and the promotion decision. ``space``: the space asset's summary; ``rows``:
    filtered rows of the other tables the table's models read (lookups; children and their lookups)."""
    use_threads(settings.threads)  # before the space loads: a step process starts at torch's default count
    target = plan.target
    df, notes, excluded = training_frame(plan, raw, filtered, settings.predictor_max_rows, settings.seed)
    rows = {**(rows or {}), plan.table.name: filtered}
    df = plan.table.model_frame(df, rows)
    test = held_out_split(df[list(plan.table.spec.primary_key)], settings.seed)
    counted = accounting.account(len(filtered), {accounting.USED_FOR_TRAINING: int((~test).sum()),
                                                 accounting.HELD_OUT_FOR_EVALUATION: int(test.sum())},
                                 excluded, what=f"predictor '{target.name}' on '{plan.table.name}'")
    train_df, test_df = df[~test].reset_index(drop=True), df[test].reset_index(drop=True)
    key = digest({"code": model_code_version(), "target": target_identity(target), "spec": plan.table.describe(),
                  "settings": {**settings.training(), "max_rows": settings.predictor_max_rows},
                  "data": frame_fingerprint(df), "space": space["key"], "split": SPLIT_SCHEME})
    tables = child_tables(topology, plan, rows)
    candidate = store.find(key)
    if candidate is None:
        candidate = _fit_candidate(plan, load_space(space["path"], tables=tables), train_df, test_df, store, key,
                                   settings, run_id, [*notes, accounting.line(counted)], _seen_rows(plan, raw, train_df),
                                   counted)
    else:
        candidate = reused(candidate)
    candidate = {**candidate, "row_accounting": counted}  # this run's rows (a reused version: the same rows used)
    return _promote(plan, candidate, test_df, tables, store, run_id, settings.margin_for(target.lightgbm_margin))


def _seen_rows(plan: TargetPlan, raw: pd.DataFrame, train_df: pd.DataFrame) -> pd.DataFrame:
    """Every labelled row of the table when a version is trained (sampled out, held out or trained on:
    ``trained`` marks the last), so drift counts as new only labelled rows that arrived later."""
    pk = list(plan.table.spec.primary_key)
    labels = target_values(raw, plan.target).reset_index(drop=True)
    ok = labelled(labels, plan.target.kind)[0]
    seen = labelled_rows(raw[pk].reset_index(drop=True)[ok], labels[ok], trained_on=False)
    seen["trained"] = seen["key_hash"].isin(set(row_hashes(train_df[pk])))
    return seen


def _fit_candidate(plan: TargetPlan, es, train_df: pd.DataFrame, test_df: pd.DataFrame, store: ArtifactStore,
                   key: str, settings: FitSettings, run_id: str, notes: list[str], seen: pd.DataFrame,
                   counted: dict) -> dict:
    """Fit, save and measure a new version against the baselines on the held-out rows; warn of input
    columns that alone predict the target (``leakage_notes``)."""
    target, tmp = plan.target, store.start(key)
    hide = hidden_features(plan)
    notes = [*notes, hidden_note(plan)]
    p = Predictor.fit(es, train_df, target=target.column, kind=target.kind, positive_label=target.positive_label,
                      cost_false_positive=target.cost_false_positive, cost_false_negative=target.cost_false_negative,
                      exclude_features=hide, seed=settings.seed, time_budget_s=settings.time_budget_s,
                      threads=settings.threads)
    p.save(tmp)
    y_tr, y_te = train_df[target.column].to_numpy(), test_df[target.column].to_numpy()
    seen.to_parquet(tmp / LABELS, index=False)
    task = p.task_
    resp = p.predict_frame(test_df.drop(columns=[target.column]), explain=False)
    lgb_train, lgb_test = train_df, test_df
    if plan.table.has_relational_space:  # LightGBM gets the same per-parent child counts and means
        lgb_train, lgb_test = es.child_aggregates(train_df), es.child_aggregates(test_df)
    features = [c for c in es.plan.columns if c not in hide and c != target.column and c in lgb_train.columns]
    leakage = leaky_columns(lgb_train[features], y_tr, task.kind, settings.seed)
    notes += leakage_notes(leakage, target.name)
    lgb = lightgbm_baseline(task, lgb_train[features], y_tr, lgb_test[features], settings.seed)
    fitted = p.summary()
    summary = {**{k: fitted.get(k) for k in ("kind", "primary_metric", "higher_is_better", "loss", "loss_reason",
                                             "threshold", "threshold_reason", "model_version")},
               "path": str(tmp), "target": target.name, "rows_train": int(len(train_df)),
               "rows_test": int(len(test_df)), "split_scheme": SPLIT_SCHEME, "features": features, "hidden": list(hide),
               "hidden_why": hidden_reasons(plan), "notes": notes, "row_accounting": counted, "leakage": leakage,
               "metrics": task.metrics(y_te, resp), "lightgbm": task.metrics(y_te, lgb),
               "baseline": task.metrics(y_te, naive_baseline(task, y_tr, len(test_df))),
               "calibration": (fitted.get("calibration") or {}).get("method"),
               "figures": predictor_figures(task, y_te, resp, tmp), "head": fitted.get("head"),
               "examples": explained_examples(p, test_df.drop(columns=[target.column])),
               **trained(key, run_id, fitted["decisions"])}
    return store.publish(key, tmp, summary)


EXAMPLE_ROWS, EXAMPLE_COLUMNS = 3, 5


def explained_examples(p: Predictor, rows: pd.DataFrame) -> list[dict]:
    """The first few held-out rows explained: prediction, the columns that moved it most and, on a
    relational space, each child table's share and the child rows that weighed most."""
    out = []
    for r in p.predict(rows.head(EXAMPLE_ROWS)) if len(rows) else []:
        top = dict(list(r["feature_importance"].items())[:EXAMPLE_COLUMNS])
        out.append({"prediction": r["prediction"], "top_columns": top,
                    **({"child_tables": r["child_tables"]} if "child_tables" in r else {})})
    return out


METRIC_NAMES = {"roc_auc": "AUC", "accuracy": "accuracy", "r2": "R²"}


def leakage_notes(leakage: list[dict], target: str) -> list[str]:
    """A warning per column that alone predicts the target (``featrix_model.leakage``)."""
    return [f"[WARN] possible leakage: column '{d['column']}' alone predicts '{target}' with "
            f"{METRIC_NAMES.get(d['metric'], d['metric'])} {d['score']:.3f} on held-out rows — if it is known only "
            "after the outcome, list it in the target's exclude_features" for d in leakage]


def _gated(summary: dict, margin: float) -> dict:
    """The version with today's quality-gate verdict (the margin is a run setting, not part of the key)."""
    return {**summary, "quality_gate": dict(zip(("passed", "why"), quality_gate(summary, margin)))}


MIN_COMPARED = 30  # fewer held-out rows that neither version trained on: the versions cannot be compared


def _promote(plan: TargetPlan, candidate: dict, test_df: pd.DataFrame, tables, store: ArtifactStore,
             run_id: str, margin: float) -> dict:
    """The serving version after this run's candidate was weighed against it."""
    candidate = _gated(candidate, margin)
    current = serving_key(store.root)
    serving = store.find(current) if current else None
    if serving is not None and current == candidate["key"]:
        promoted, why = False, "the candidate is the serving version (nothing changed)"
    else:
        promoted, why = decide(*_weigh(plan, candidate, serving, test_df, tables)) if serving else decide(candidate, None)
        if serving is None and current is not None:
            why = f"the serving version {current} is gone from {store.root}; the candidate serves" + why.removeprefix(
                "first trained version")
        if promoted:
            set_serving(store.root, candidate["key"], run_id, why)
            serving = candidate
    removed = store.prune(protect={candidate["key"], serving["key"]})
    if serving is not candidate:
        serving = reused(_gated(serving, margin))  # this run trained nothing that serves
    return {**serving, "candidate": {k: candidate.get(k) for k in ("key", "reused", "metrics", "trained_at",
                                                                   "trained_by_run", "quality_gate", "row_accounting",
                                                                   "leakage", "hidden_why")},
            "promotion": {"promoted": promoted, "why": why, "serving": serving["key"], "pruned": removed}}


def _weigh(plan: TargetPlan, candidate: dict, serving: dict, test_df: pd.DataFrame, tables) -> tuple[dict, dict | str]:
    """(candidate, serving version's metrics) on the candidate's held-out rows that the serving version
    did not train on either (both measured again when that is fewer than all of them); a reason
    string instead of metrics when the serving version cannot be measured (the candidate takes over)."""
    if serving.get("split_scheme") != SPLIT_SCHEME:
        return candidate, (f"the serving version {serving['key']} drew its held-out rows another way: the versions "
                           "cannot be compared on rows neither trained on")
    fair = _not_trained_on(serving, test_df[list(plan.table.spec.primary_key)])
    if fair.all():
        return candidate, _measure(plan, serving, test_df, tables, candidate["primary_metric"])
    n = int(fair.sum())
    if n < MIN_COMPARED:
        return candidate, (f"only {n} held-out rows were held out from the serving version too (it was trained on "
                           "another split): the versions cannot be compared fairly")
    rows = test_df[fair].reset_index(drop=True)
    again = _measure(plan, candidate, rows, tables, candidate["primary_metric"])
    if isinstance(again, str):  # e.g. one class only among those rows
        return candidate, f"the versions cannot be compared on the {n} rows neither trained on ({again})"
    return {**candidate, "metrics": again}, _measure(plan, serving, rows, tables, candidate["primary_metric"])


def _not_trained_on(version: dict, keys: pd.DataFrame) -> np.ndarray:
    """True for the rows (by primary key) a stored version did not train on; all True when it kept no record."""
    known = version_labels(version["path"])
    if known is None or "key_hash" not in known.columns:
        return np.ones(len(keys), dtype=bool)
    return ~row_hashes(keys.reset_index(drop=True)).isin(set(known.loc[known["trained"], "key_hash"])).to_numpy()


def _measure(plan: TargetPlan, version: dict, rows: pd.DataFrame, tables, metric: str) -> dict | str:
    """A stored version's metrics on ``rows``, or why they cannot be measured."""
    try:
        p = Predictor.load(version["path"], tables=tables)
        y = rows[plan.target.column].to_numpy()
        metrics = p.task_.metrics(y, p.predict_frame(rows.drop(columns=[plan.target.column]), explain=False))
    except (ValueError, KeyError, TypeError, FileNotFoundError, RuntimeError) as e:  # e.g. weights of older code
        return f"version {version['key']} cannot be measured on these rows ({type(e).__name__}: {e})"
    if metrics.get(metric) is None:
        return f"version {version['key']} has no {metric} on these rows"
    return metrics
