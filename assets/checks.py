"""Asset checks of the model assets: a space that has not collapsed, a predictor that beats its
baselines. (The data-quality checks live beside their assets in ``tables`` and ``joins``; they
show their example rows through ``examples_md``, from records whose personal data the pipeline
has already masked.)"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from featrix_pipeline.evaluation import quality_gate

COLLAPSE = ("On validation rows: embedding std > 0.01, range > 0.1 and mean pairwise distance > 0.1 — the "
            "rows did not all land in one spot.")
BEATS_BASELINES = ("Beats the majority/mean baseline and trails LightGBM (same held-out rows) by no more than the "
                   "allowed margin.")


def examples_md(records: list[dict], n: int = 10) -> str:
    """A check's example rows as a markdown table (the first ``n``), or "none"."""
    if not records:
        return "none"
    return pd.DataFrame(records).head(n).to_markdown(index=False)


def collapse_spec(key) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec("no_embedding_collapse", asset=list(key), blocking=True, description=COLLAPSE)


def collapse_check(summary: dict) -> dg.AssetCheckResult:
    """The blocking ``no_embedding_collapse`` result from a space's final collapse metrics."""
    c = summary["collapse"]
    return dg.AssetCheckResult(
        check_name="no_embedding_collapse", passed=not c.get("collapsed", True), severity=dg.AssetCheckSeverity.ERROR,
        description=(f"embedding std {c.get('embedding_std', 0):.4f}, range {c.get('embedding_range', 0):.3f}, "
                     f"mean pairwise distance {c.get('avg_pairwise_distance', 0):.3f}"),
        metadata={k: float(v) for k, v in c.items() if k != "collapsed"})


def beats_baselines_spec(key) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec("beats_baselines", asset=list(key), blocking=True, description=BEATS_BASELINES)


def beats_baselines(summary: dict, margin: float, note: str = "") -> dg.AssetCheckResult:
    """Passes when the serving predictor clears its quality gate; a gate cleared while a column alone
    predicts the target almost perfectly (possible leakage) does not pass quietly: it is a WARN."""
    ok, why = quality_gate(summary, margin)
    leaks = summary.get("leakage") or (summary.get("candidate") or {}).get("leakage") or []
    severity = dg.AssetCheckSeverity.ERROR
    if ok and leaks:
        ok, severity = False, dg.AssetCheckSeverity.WARN
        names = ", ".join(f"'{leak['column']}'" for leak in leaks[:5])
        why = (f"{why} — but possible leakage: {names} alone predict{'s' if len(leaks) == 1 else ''} the target "
               "almost perfectly on held-out rows; if known only after the outcome, list in the target's "
               "exclude_features")
    return dg.AssetCheckResult(check_name="beats_baselines", passed=ok, severity=severity,
                               description=why + (f" — {note}" if note else ""),
                               metadata={"ours": dg.MetadataValue.json(summary["metrics"]),
                                         "lightgbm": dg.MetadataValue.json(summary["lightgbm"]),
                                         "baseline": dg.MetadataValue.json(summary["baseline"]),
                                         "leakage": dg.MetadataValue.json(leaks), "margin": margin})
