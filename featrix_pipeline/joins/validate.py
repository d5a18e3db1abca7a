"""``validate_join``: every check of one declared relationship, in a fixed order, from one key match."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from featrix_pipeline.joins.checks import cardinality, coverage, duplicate_parent_keys, key_nulls, temporal_consistency
from featrix_pipeline.joins.codes import context_columns, match_keys
from featrix_pipeline.joins.key_types import key_types_check, pair_types
from featrix_pipeline.joins.report import ERROR, CheckOutcome, JoinReport
from featrix_pipeline.joins.shift import distribution_shift
from featrix_pipeline.spec import RelationshipSpec


def validate_join(rel: RelationshipSpec, child: pd.DataFrame, parent: pd.DataFrame, *,
                  parent_primary_key: Sequence[str] = (), child_time_column: str | None = None,
                  parent_time_column: str | None = None,
                  target_columns: dict[str, pd.Series] | None = None) -> JoinReport:
    """Validate ``rel`` on the two frames; never raises on bad data, never mutates its inputs.

    The checks run in this order: key_types, coverage, key_nulls, cardinality, duplicate_parent_keys
    and, when there is time to compare, temporal_consistency. Temporal ranges and distribution shift
    are extras: an error there is recorded in the report instead of failing it.
    """
    base = dict(relationship=rel.name, child=rel.child, parent=rel.parent, condition=rel.condition,
                declared_cardinality=rel.cardinality, child_rows=len(child), parent_rows=len(parent), note=rel.note)
    missing = ([f"{rel.child}.{c}" for c in rel.child_keys if c not in child.columns]
               + [f"{rel.parent}.{p}" for p in rel.parent_keys if p not in parent.columns])
    if missing:
        return _missing_columns_report(rel, base, missing)
    ctx = context_columns(child, list(rel.child_keys), child_time_column)
    key_types, typed, casted = pair_types(rel, child, parent)
    m = match_keys(typed)
    checks = [key_types_check(rel, child, parent, m, key_types, typed, casted),
              coverage(rel, child, m, ctx, types_differ=any(not kt["compatible"] for kt in key_types)),
              key_nulls(rel, child, m, ctx), cardinality(rel, parent, m),
              duplicate_parent_keys(rel, parent, m, parent_primary_key)]
    try:
        temporal, tcheck = temporal_consistency(rel, child, parent, child_time_column, parent_time_column, ctx)
        if tcheck:
            checks.append(tcheck)
    except Exception as e:  # noqa: BLE001
        temporal = {"error": f"{type(e).__name__}: {e}"}
    try:
        shift = distribution_shift(rel, child, parent, m, target_columns)
    except Exception as e:  # noqa: BLE001
        shift = {"error": f"{type(e).__name__}: {e}"}
    meta = {c.name: c.metadata for c in checks}  # the report repeats the checks' numbers and examples
    cov, card, dups = meta["coverage"], meta["cardinality"], meta["duplicate_parent_keys"]
    return JoinReport(**base, coverage=m.coverage, coverage_all_rows=m.coverage_all_rows,
                      key_null_ratio=meta["key_nulls"]["null_ratio"], orphan_rows=cov["orphan_rows"],
                      orphan_examples=cov["examples"], duplicate_parent_keys=dups["duplicated_join_keys"],
                      duplicate_examples=dups["examples"], observed_cardinality=card["observed"],
                      max_parents_per_child_key=card["max_parents_per_child_key"],
                      max_children_per_parent_key=card["max_children_per_parent_key"], joined_rows=card["left_join_rows"],
                      key_types=key_types, distribution_shift=shift, temporal=temporal, checks=checks)


def _missing_columns_report(rel: RelationshipSpec, base: dict, missing: list[str]) -> JoinReport:
    """The report when key columns are missing: nothing can be matched, key_types and coverage fail."""
    desc = (f"Join {rel.child} → {rel.parent} cannot run: column(s) {', '.join(missing)} are missing; "
            f"fix the condition `{rel.condition}` or the source tables.")
    return JoinReport(**base, coverage=0.0, coverage_all_rows=0.0, key_null_ratio=0.0, orphan_rows=base["child_rows"],
                      orphan_examples=[], duplicate_parent_keys=0, duplicate_examples=[], observed_cardinality="unknown",
                      max_parents_per_child_key=0, max_children_per_parent_key=0, joined_rows=base["child_rows"],
                      key_types=[], distribution_shift={}, temporal=None,
                      checks=[CheckOutcome("key_types", False, ERROR, desc, {"missing_columns": missing, "examples": []}),
                              CheckOutcome("coverage", False, ERROR, desc, {"examples": []})])
