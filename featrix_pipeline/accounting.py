"""Where every row went: each model step's rows in = rows used + rows excluded, with the reason for
each exclusion, built once here and checked exactly (a step that loses a row without saying why
raises instead of reporting a wrong total).

The vocabulary is fixed, so the same words mean the same thing on every asset:

* uses — ``USED_FOR_TRAINING`` (the model learned from the row), ``HELD_OUT_FOR_EVALUATION`` (kept
  out of training to measure the model: the predictor's held-out rows),
  ``HELD_OUT_FOR_VALIDATION`` (kept out by a space's own training loop to pick its best epoch),
  ``EMBEDDED``/``EMBEDDING_REUSED`` (a row embedding computed now, or the training one reused),
  ``SCORED``/``ALREADY_SCORED`` (a prediction made now, or a stored one still valid), and
  ``CHILD_USED`` (a child row pooled into its parent's row);
* exclusions — ``NO_TARGET``, ``SAMPLED_OUT_PREDICTOR``, ``SAMPLED_OUT_SPACE``, ``CHILD_NULL_KEY``,
  ``CHILD_NO_PARENT``, ``CHILD_AFTER_CUTOFF``, ``CHILD_NO_TIME``.

An accounting is a plain dict (it is saved in artifact summaries): ``rows_in``, ``rows_used``,
``rows_excluded``, ``used`` {use: rows} and ``excluded`` {reason: rows}; zero counts are left out.
Only counts go in, so the same rows give the same accounting in every run.
"""

from __future__ import annotations

USED_FOR_TRAINING = "used for training"
HELD_OUT_FOR_EVALUATION = "held out for evaluation"
HELD_OUT_FOR_VALIDATION = "held out for validation (the space's own training loop)"
EMBEDDED = "embedded (encoded in this run)"
EMBEDDING_REUSED = "embedded (its training embedding reused)"
SCORED = "scored in this run"
ALREADY_SCORED = "already scored (unchanged, same model version): stored prediction kept"
CHILD_USED = "pooled into its parent's row"

NO_TARGET = "no target value"
SAMPLED_OUT_PREDICTOR = "sampled out (predictor_max_rows)"
SAMPLED_OUT_SPACE = "sampled out of the space's training batches (its max_train_rows; still embedded)"
CHILD_NULL_KEY = "null child key"
CHILD_NO_PARENT = "no matching parent key (orphan)"
CHILD_AFTER_CUTOFF = "dated at or after the parent's cutoff"
CHILD_NO_TIME = "no time under the cutoff"


class RowAccountingError(AssertionError):
    """A step's rows do not add up: rows in ≠ rows used + rows excluded."""


def account(rows_in: int, used: dict[str, int], excluded: dict[str, int] | None = None, what: str = "rows") -> dict:
    """The accounting of ``rows_in`` rows; raises RowAccountingError unless every row is used or
    excluded exactly once (no negative count, the sums equal)."""
    used = {k: int(v) for k, v in used.items() if int(v)}
    excluded = {k: int(v) for k, v in (excluded or {}).items() if int(v)}
    negative = {k: v for k, v in {**used, **excluded}.items() if v < 0}
    n_used, n_excluded = sum(used.values()), sum(excluded.values())
    if negative or int(rows_in) != n_used + n_excluded:
        raise RowAccountingError(
            f"{what}: {int(rows_in):,} rows in, but {n_used:,} used ({used}) + {n_excluded:,} excluded ({excluded}) "
            f"= {n_used + n_excluded:,}" + (f"; negative counts {negative}" if negative else "")
            + ": a step lost or invented rows without a reason.")
    return {"rows_in": int(rows_in), "rows_used": n_used, "rows_excluded": n_excluded, "used": used,
            "excluded": excluded}


def table_rows(accounting: dict) -> list[dict]:
    """One record per line of an accounting (``row``: used/excluded/in, ``what``, ``rows``)."""
    return ([{"row": "used", "what": k, "rows": v} for k, v in accounting["used"].items()]
            + [{"row": "excluded", "what": k, "rows": v} for k, v in accounting["excluded"].items()]
            + [{"row": "in", "what": "rows in (= used + excluded)", "rows": accounting["rows_in"]}])


def markdown(accounting: dict) -> str:
    """The accounting as a markdown table."""
    lines = ["| rows | what | count |", "|---|---|---|"]
    lines += [f"| {r['row']} | {r['what']} | {r['rows']:,} |" for r in table_rows(accounting)]
    return "\n".join(lines)


def line(accounting: dict) -> str:
    """One sentence: ``1,000 rows in: 780 used for training, 200 held out …; 20 excluded (no target value)``."""
    used = ", ".join(f"{v:,} {k}" for k, v in accounting["used"].items()) or "none used"
    excluded = "; ".join(f"{v:,} excluded ({k})" for k, v in accounting["excluded"].items())
    return f"{accounting['rows_in']:,} rows in: {used}" + (f"; {excluded}" if excluded else "")
