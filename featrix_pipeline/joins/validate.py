"""``validate_join``: every check of one declared relationship, in a fixed order, from one key match."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Sequence

import pandas as pd

from featrix_model.keys import SQL_TYPE
from featrix_pipeline.joins.checks import cardinality, coverage, duplicate_parent_keys, key_nulls, temporal_consistency
from featrix_pipeline.joins.codes import KeyMatch, context_columns, match_keys, pct
from featrix_pipeline.joins.key_types import key_types_check, pair_types
from featrix_pipeline.joins.report import ERROR, WARN, CheckOutcome, JoinReport
from featrix_pipeline.joins.shift import distribution_shift
from featrix_pipeline.privacy import Masker
from featrix_pipeline.spec import RelationshipSpec


def validate_join(rel: RelationshipSpec, child: pd.DataFrame, parent: pd.DataFrame, *,
                  parent_primary_key: Sequence[str] = (), child_time_column: str | None = None,
                  parent_time_column: str | None = None,
                  target_columns: dict[str, pd.Series] | None = None, child_primary_key: Sequence[str] = (),
                  allowed_personal_data: Mapping[str, Collection[str]] | None = None) -> JoinReport:
    """Validate ``rel`` on the two frames; never raises on bad data, never mutates its inputs.

    The checks run in this order: key_types, coverage, key_nulls, cardinality, duplicate_parent_keys
    and, when there is time to compare, temporal_consistency. Temporal ranges and distribution shift
    are extras: an error there is recorded in the report instead of failing it.

    Example rows and key values in messages mask the columns holding personal data
    (``featrix_pipeline.privacy``) except those ``allowed_personal_data`` allows per table
    ({table: columns}, ``privacy.ALL`` for every column). ``child_primary_key`` names the child
    rows shown (e.g. those with a NULL key).
    """
    base = dict(relationship=rel.name, child=rel.child, parent=rel.parent, condition=rel.condition,
                declared_cardinality=rel.cardinality, child_rows=len(child), parent_rows=len(parent), note=rel.note)
    missing = ([f"{rel.child}.{c}" for c in rel.child_keys if c not in child.columns]
               + [f"{rel.parent}.{p}" for p in rel.parent_keys if p not in parent.columns])
    if missing:
        return _missing_columns_report(rel, base, missing, timed=bool(child_time_column and parent_time_column))
    allowed = allowed_personal_data or {}
    mc, mp = Masker.of(child, allowed.get(rel.child, ())), Masker.of(parent, allowed.get(rel.parent, ()))
    ctx = context_columns(child, list(rel.child_keys), child_time_column, child_primary_key)
    key_types, typed, casted = pair_types(rel, child, parent, mc, mp)
    m = match_keys(typed)
    mismatched = [kt for kt in key_types if not kt["compatible"]]
    checks = [key_types_check(rel, child, parent, m, key_types, typed, casted, mc, mp),
              coverage(rel, child, m, ctx, types_differ=bool(mismatched), mc=mc),
              key_nulls(rel, child, m, ctx, mc, row_id=child_primary_key),
              cardinality(rel, parent, m, mp, parent_primary_key, list(child.columns), _unobserved(rel, m, mismatched)),
              duplicate_parent_keys(rel, parent, m, parent_primary_key, mp, list(child.columns))]
    try:
        temporal, tcheck = temporal_consistency(rel, child, parent, child_time_column, parent_time_column, ctx, mc)
        if tcheck:
            checks.append(tcheck)
    except Exception as e:  # noqa: BLE001
        temporal = {"error": f"{type(e).__name__}: {e}"}
    try:
        shift = _mask_shift(distribution_shift(rel, child, parent, m, target_columns), mc)
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


def _unobserved(rel: RelationshipSpec, m: KeyMatch, mismatched: list[dict]) -> tuple[str, str]:
    """Why no child row finds a parent, and the fix, for the cardinality check that then cannot run."""
    C, P, ck = rel.child, rel.parent, " + ".join(rel.child_keys)
    if m.n_child == 0:
        return f"{C} has no rows", f"load {C} rows"
    if m.n_keyed == 0:
        return f"every {C} row has a NULL {ck}", f"fill {C}.{ck} at the source (see key_nulls)"
    if mismatched:
        kt = mismatched[0]
        fc, fp = (SQL_TYPE.get(kt[f"{s}_family"], kt[f"{s}_family"]) for s in ("child", "parent"))
        return (f"the key types differ ({C}.{kt['child_column']} is {fc}, {P}.{kt['parent_column']} is {fp}), so the "
                "join matches nothing", f"{kt['cast_sql']} or store both keys with one type (see key_types)"
                if kt.get("cast_sql") else "convert one side so both keys hold the same kind of value (see key_types)")
    return (f"no {C} key finds a {P} row (coverage {pct(m.coverage)})",
            f"correct the {C}.{ck} values or the condition `{rel.condition}` (see coverage)")


def _mask_shift(shift: dict, mc: Masker) -> dict:
    """The distribution shift with the most shifted value of a personal-data column masked."""
    for c, v in shift.get("columns", {}).items():
        if c in mc.kinds and v.get("most_shifted") not in (None, "NULL", "(other)"):
            v["most_shifted"] = mc.value(c, v["most_shifted"])
    for t in shift.get("top", []):
        t["most_shifted"] = shift["columns"][t["column"]]["most_shifted"]
    return shift


def _missing_columns_report(rel: RelationshipSpec, base: dict, missing: list[str], timed: bool) -> JoinReport:
    """The report when key columns are missing: nothing can be matched, key_types and coverage fail
    and the other checks say they could not be checked."""
    desc = (f"Join {rel.child} → {rel.parent} cannot run: column(s) {', '.join(missing)} are missing; "
            f"fix the condition `{rel.condition}` or the source tables.")
    meta = {"missing_columns": missing, "examples": []}
    unchecked = [CheckOutcome(n, False, WARN, f"{n.capitalize().replace('_', ' ')} could not be checked because column(s) "
                              f"{', '.join(missing)} are missing; fix the condition `{rel.condition}` or the source "
                              "tables.", dict(meta))
                 for n in ("key_nulls", "cardinality", "duplicate_parent_keys", *(("temporal_consistency",) if timed else ()))]
    return JoinReport(**base, coverage=0.0, coverage_all_rows=0.0, key_null_ratio=0.0, orphan_rows=base["child_rows"],
                      orphan_examples=[], duplicate_parent_keys=0, duplicate_examples=[], observed_cardinality="unknown",
                      max_parents_per_child_key=0, max_children_per_parent_key=0, joined_rows=base["child_rows"],
                      key_types=[], distribution_shift={}, temporal=None,
                      checks=[CheckOutcome("key_types", False, ERROR, desc, dict(meta)),
                              CheckOutcome("coverage", False, ERROR, desc, dict(meta)), *unchecked])
