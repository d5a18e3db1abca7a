"""Which trained version of a predictor serves predictions.

A retrained predictor (the *candidate*) replaces the serving one only when it passes its quality
gate and is no worse on the same held-out rows — the candidate's held-out rows that the serving
version did not train on either, on which both are scored — so a retrain triggered by drift or a
code change never silently lowers quality. The choice
is recorded in ``serving.json`` beside the versions, written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from featrix_pipeline.reuse import now_utc, write_json_atomically

SERVING = "serving.json"


def serving_key(root: Path) -> str | None:
    path = Path(root) / SERVING
    return json.loads(path.read_text())["key"] if path.exists() else None


def set_serving(root: Path, key: str, run_id: str, why: str) -> None:
    write_json_atomically(Path(root) / SERVING, {"key": key, "since": now_utc(), "run": run_id, "why": why})


def decide(candidate: dict, serving_metrics: dict | str | None) -> tuple[bool, str]:
    """Promote the candidate? ``serving_metrics``: the serving version's metrics on the candidate's
    held-out rows (None when nothing serves yet; a reason string when they could not be measured).
    A candidate that fails its quality gate (``beats_baselines``) never replaces a serving version."""
    m = candidate["primary_metric"]
    gate = candidate.get("quality_gate") or {"passed": True}
    if serving_metrics is None:
        return True, "first trained version" + ("" if gate["passed"] else " (it fails its quality gate: see the check)")
    if not gate["passed"]:
        return False, f"the candidate fails its quality gate ({gate.get('why')}); the serving version keeps serving"
    if isinstance(serving_metrics, str):
        return True, f"{serving_metrics}: the candidate takes over"
    new, old = candidate["metrics"][m], serving_metrics[m]
    better = new >= old if candidate["higher_is_better"] else new <= old
    verdict = "no worse than" if better else "worse than"
    return better, (f"candidate {m} {new:.4f} is {verdict} the serving version's {old:.4f} on the same held-out rows"
                    + ("" if better else "; the serving version keeps serving"))
