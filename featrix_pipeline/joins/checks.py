"""The join checks after key_types, one function each, all reading the same ``KeyMatch``:

* coverage — share of child rows whose key finds a parent (warn / error thresholds from the spec),
  with the most frequent orphan keys;
* key_nulls — child rows with a NULL key (kept, never dropped, but counted);
* cardinality — declared vs observed; a "many_to_one" whose parent repeats keys multiplies rows;
* duplicate_parent_keys — duplicates in the parent's primary key and in its join key;
* temporal_consistency — only when both sides carry time: child rows outside the parent's range.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sqlglot import exp

from featrix_model.keys import key_family, naive_utc
from featrix_pipeline.joins.codes import (MAX_EXAMPLES, KeyMatch, example_rows, first_rows, pct, show_key, sql_column,
                                          sql_text)
from featrix_pipeline.joins.report import ERROR, WARN, CheckOutcome
from featrix_pipeline.privacy import Masker
from featrix_pipeline.spec import RelationshipSpec


def coverage(rel: RelationshipSpec, child: pd.DataFrame, m: KeyMatch, ctx: list[str],
             types_differ: bool, mc: Masker = Masker()) -> CheckOutcome:
    """ERROR under ``coverage_error_below``, WARN under ``coverage_warn_below``; the metadata's
    ``examples`` are the first row of each of the most frequent orphan keys (personal data masked)."""
    C, P, ck = rel.child, rel.parent, list(rel.child_keys)
    orphan_examples = mc.records(_orphan_examples(child, m, ctx))
    top_keys = [{**{c: r[c] for c in ck}, "rows": r["rows_with_this_key"]} for r in orphan_examples]
    keys_txt = ", ".join(f"{show_key([r[c] for c in ck])} ({r['rows']:,})" for r in top_keys[:5])
    ck_txt = " + ".join(ck)
    n_orphan = int(m.orphan.sum())
    level = ERROR if m.coverage < rel.coverage_error_below else WARN if m.coverage < rel.coverage_warn_below else None
    desc = (f"Join {C} → {P} has {pct(m.coverage)} coverage: {n_orphan:,} of {m.n_keyed:,} {C} rows with a non-NULL "
            f"{ck_txt} find no {P} row" + (f" (top orphan keys: {keys_txt})" if keys_txt else "") + ".")
    if m.n_keyed == 0:
        desc = f"Join {C} → {P} cannot match anything: {C} has no rows with a non-NULL {ck_txt}."
    elif types_differ:
        desc += " Nothing matches because the key types differ (see key_types)."
    if m.n_keyed < m.n_child:
        desc += f" {m.n_child - m.n_keyed:,} more {C} rows have a NULL {ck_txt} (see key_nulls)."
    desc += (f" Below the {pct(rel.coverage_error_below)} error threshold: fix the keys before training." if level == ERROR
             else f" Below the {pct(rel.coverage_warn_below)} warning threshold: review data quality." if level == WARN
             else f" At or above the {pct(rel.coverage_warn_below)} threshold.")
    meta = {"coverage": m.coverage, "coverage_all_rows": m.coverage_all_rows, "orphan_rows": n_orphan,
            "warn_below": rel.coverage_warn_below, "error_below": rel.coverage_error_below, "top_orphan_keys": top_keys,
            "examples": orphan_examples, **mc.metadata()}
    if rel.note:
        meta["note"] = rel.note
    return CheckOutcome("coverage", level is None, level or ERROR, desc, meta)


def _orphan_examples(child: pd.DataFrame, m: KeyMatch, ctx: list[str]) -> list[dict]:
    """One child row per orphan key, most frequent key first, with ``rows_with_this_key``."""
    vc = pd.Series(m.child_codes[m.orphan]).value_counts().head(MAX_EXAMPLES)
    orphan_df = first_rows(child, m.child_codes, vc.index, m.orphan)[ctx].copy() if len(vc) else child.iloc[:0][ctx].copy()
    orphan_df["rows_with_this_key"] = vc.to_numpy()
    return example_rows(orphan_df)


def key_nulls(rel: RelationshipSpec, child: pd.DataFrame, m: KeyMatch, ctx: list[str], mc: Masker = Masker(),
              row_id: Sequence[str] = ()) -> CheckOutcome:
    """WARN when more than ``max_key_null_ratio`` of the child rows have a NULL in the key; the
    description names a few of those rows by ``row_id`` (the child's primary key) when known."""
    n_child, n_keyed = m.n_child, m.n_keyed
    null_ratio = 1 - n_keyed / n_child if n_child else 0.0
    per_col = {c: float(child[c].isna().mean()) if n_child else 0.0 for c in rel.child_keys}
    ok = null_ratio <= rel.max_key_null_ratio
    examples = mc.records(example_rows(child.loc[~m.keyed, ctx]))
    ids = [c for c in row_id if c in ctx and c not in rel.child_keys]
    named = ", ".join(show_key([r[c] for c in ids]) for r in examples[:5]) if ids else ""
    desc = (f"{pct(null_ratio)} of {rel.child} rows ({n_child - n_keyed:,}) have a NULL {' + '.join(rel.child_keys)}"
            + (f" (e.g. {'/'.join(ids)} {named})" if named else "") + f"; they are kept without {rel.parent} data, "
            + (f"within the {pct(rel.max_key_null_ratio)} limit." if ok else
               f"above the {pct(rel.max_key_null_ratio)} limit: fix the source or raise max_key_null_ratio with a note."))
    return CheckOutcome("key_nulls", ok, WARN, desc, {"null_ratio": null_ratio, "per_column": per_col,
                                                      "examples": examples, **mc.metadata()})


def cardinality(rel: RelationshipSpec, parent: pd.DataFrame, m: KeyMatch, mp: Masker = Masker(),
                primary_key: Sequence[str] = (), child_columns: Sequence[str] = (),
                unobserved: tuple[str, str] | None = None) -> CheckOutcome:
    """ERROR when a child row matches several parents (the join multiplies rows), or when a
    declared one_to_one parent is matched by several children; not passed (WARN, "could not be
    checked because ...") when no child row finds a parent, so there is nothing to observe.

    A fan-out is explained by its cause: duplicate parent rows when the condition already uses the
    parent's whole ``primary_key``; the primary-key column(s) the condition leaves out otherwise
    (named, with the child's column of the same name when it has one)."""
    C, P, n_child = rel.child, rel.parent, m.n_child
    max_parents = int(m.per_row.max(initial=0))
    max_children = int(m.child_counts[m.parent_counts > 0].max(initial=0))
    child_frame = f"{'many' if max_children > 1 else 'one'}_to_{'many' if max_parents > 1 else 'one'}"
    observed = child_frame if rel.left == C else "_to_".join(reversed(child_frame.split("_to_")))
    if m.n_matched == 0:
        observed = "unknown"  # nothing joins: the relationship cannot be observed
    inner_rows = int(m.per_row.sum())
    joined_rows = inner_rows + int((~m.matched).sum())
    too_many_parents = max_parents > 1
    too_many_children = rel.cardinality == "one_to_one" and max_children > 1
    factor = joined_rows / n_child if n_child else 1.0
    examples = mp.records(_fanout_examples(rel, parent, m, too_many_parents)) if too_many_parents or too_many_children else []
    meta = {"observed": observed, "max_parents_per_child_key": max_parents, "max_children_per_parent_key": max_children,
            "left_join_rows": joined_rows, "inner_join_rows": inner_rows, "child_rows": n_child, "multiplication": factor}
    if m.n_matched == 0:
        why, fix = unobserved or (f"no {C} row finds a {P} row", "correct the keys (see coverage)")
        desc = (f"Cardinality could not be checked because {why}: with no joined rows there is nothing to count. "
                f"Fix: {fix}; the check runs again with the next materialization.")
        return CheckOutcome("cardinality", False, WARN, desc, {**meta, "could_not_check": why, "fix": fix,
                                                               "examples": []})
    if too_many_parents:
        head = (f"Declared {rel.cardinality} but 1 {C} row matches up to {max_parents:,} {P} rows: the join would produce "
                f"{joined_rows:,} rows from {n_child:,} (×{factor:.4g})")
        cause, desc = _fanout_cause(rel, parent, primary_key, child_columns, observed, examples)
        desc, meta["cause"] = head + desc, cause
    elif too_many_children:
        desc = (f"Declared one_to_one but one {P} row is matched by up to {max_children:,} {C} rows; "
                f"declare many_to_one ({C} → {P}) or fix the keys.")
    else:
        desc = f"Declared {rel.cardinality}, observed {observed}: the join keeps {n_child:,} {C} rows (no row multiplication)."
    return CheckOutcome("cardinality", not (too_many_parents or too_many_children), ERROR, desc,
                        {**meta, "examples": examples, **(mp.metadata() if examples else {})})


def _fanout_cause(rel: RelationshipSpec, parent: pd.DataFrame, primary_key: Sequence[str],
                  child_columns: Sequence[str], observed: str, examples: list[dict]) -> tuple[str, str]:
    """(cause, the rest of the cardinality message) for a join that multiplies rows."""
    P, keys = rel.parent, list(rel.parent_keys)
    pk = [c for c in primary_key if c in parent.columns]
    top = ", ".join(f"{show_key([r[k] for k in keys])} ×{r[f'{P}_rows']:,}" for r in examples[:3])
    missing = [c for c in pk if c not in keys]
    if pk and not missing:
        n_dup = int(parent.loc[parent.duplicated(subset=pk, keep=False), pk].drop_duplicates().shape[0])
        return "duplicate_parent_rows", (
            f" because {P} has duplicate parent rows: its primary key ({', '.join(pk)}) repeats for {n_dup:,} "
            f"value{'s' * (n_dup != 1)} (e.g. {top}). This is not many_to_many — the condition already uses {P}'s whole "
            f"primary key, so no key column is missing: deduplicate {P} at the source (see the primary_key check of "
            f"{P}/profile and duplicate_parent_keys).")
    if missing:
        return "missing_key_columns", f" — really {observed}: " + missing_key_advice(rel, pk, missing, child_columns)
    return "undeclared_many_to_many", (f" — really {observed} (e.g. {top}); add the missing key column to the condition "
                                       f"or deduplicate {P}.")


def missing_key_advice(rel: RelationshipSpec, pk: list[str], missing: list[str], child_columns: Sequence[str]) -> str:
    """Which of the parent's primary-key columns the condition leaves out, and how to add them."""
    C, P = rel.child, rel.parent
    if not set(rel.parent_keys) & set(pk):  # an alternate key, not part of the primary key: adding columns is no fix
        return (f"the condition joins on {', '.join(rel.parent_keys)}, which is not part of {P}'s primary key "
                f"({', '.join(pk)}) and is not unique in {P}: deduplicate {P} on {', '.join(rel.parent_keys)}, join "
                f"on {P}'s primary key instead, or declare the relationship many_to_many.")
    shared = [c for c in missing if c in child_columns]
    absent = [c for c in missing if c not in child_columns]
    s = "s" * (len(missing) != 1)
    text = (f"the condition joins on {', '.join(rel.parent_keys)} but {P}'s primary key is ({', '.join(pk)}); "
            f"add the missing key column{s} {', '.join(missing)}")
    if shared:
        extra = exp.and_(*[exp.EQ(this=sql_column(C, c), expression=sql_column(P, c)) for c in shared])
        text += f" ({C} has {', '.join(shared)} too: `{sql_text(exp.and_(_condition(rel), extra))}`)"
    if absent:
        text += f" ({C} has no column named {', '.join(absent)}: join on the {C} column that holds the same value)"
    return text + "."


def _condition(rel: RelationshipSpec) -> exp.Expression:
    """The relationship's condition as a sqlglot expression (child = parent per key pair)."""
    return exp.and_(*[exp.EQ(this=sql_column(rel.child, c), expression=sql_column(rel.parent, p))
                      for c, p in zip(rel.child_keys, rel.parent_keys)])


def _fanout_examples(rel: RelationshipSpec, parent: pd.DataFrame, m: KeyMatch, by_parents: bool) -> list[dict]:
    """The keys that add the most joined rows (repeated parent keys, or else repeated child keys),
    with their child, parent and joined row counts."""
    score = np.where(m.parent_counts > 1 if by_parents else m.child_counts > 1, m.child_counts * m.parent_counts, 0)
    top = [i for i in np.argsort(-score, kind="stable")[:MAX_EXAMPLES] if score[i] > 0]
    examples = example_rows(first_rows(parent, m.parent_codes, top)[list(rel.parent_keys)]) if top else []
    for r, i in zip(examples, top):
        r.update({f"{rel.child}_rows": int(m.child_counts[i]), f"{rel.parent}_rows": int(m.parent_counts[i]),
                  "joined_rows": int(m.child_counts[i] * m.parent_counts[i])})
    return examples


def duplicate_parent_keys(rel: RelationshipSpec, parent: pd.DataFrame, m: KeyMatch, primary_key: Sequence[str],
                          mp: Masker = Masker(), child_columns: Sequence[str] = ()) -> CheckOutcome:
    """ERROR when a join-key value or a primary-key value is held by more than one parent row.

    When the condition uses the parent's whole primary key the advice is to deduplicate (duplicate
    parent rows); when it uses part of it, to add the missing key column(s)."""
    P, keys = rel.parent, list(rel.parent_keys)
    dup_codes = np.flatnonzero(m.parent_counts > 1)
    meta: dict = {"duplicated_join_keys": int(len(dup_codes)),
                  "parent_rows_with_duplicated_join_key": int(m.parent_counts[dup_codes].sum())}
    pk = [c for c in primary_key if c in parent.columns]
    same = set(pk) == set(keys)
    whole_pk = bool(pk) and set(pk) <= set(keys)
    pk_meta, examples = _primary_key_duplicates(parent, pk)
    meta.update(pk_meta)
    order = dup_codes[np.argsort(-m.parent_counts[dup_codes], kind="stable")][:3]  # the most repeated join keys
    if len(dup_codes) and not same:
        sel = np.flatnonzero(np.isin(m.parent_codes, order))
        sel = sel[pd.Series(m.parent_codes[sel]).groupby(m.parent_codes[sel]).cumcount().to_numpy() < 4]  # 4 rows per key
        examples += [{"duplicated_on": f"join key ({', '.join(keys)})", **r} for r in example_rows(parent.iloc[sel])]
    examples = mp.records(examples)
    n_pk = meta.get("duplicated_primary_keys", 0)
    ok = not len(dup_codes) and not n_pk
    if ok:
        desc = f"{P} has one row per {', '.join(keys)}"
        desc += f" and per primary key ({', '.join(pk)})." if pk and not same else "."
        return CheckOutcome("duplicate_parent_keys", ok, ERROR, desc, {**meta, "examples": []})
    krows = mp.frame(first_rows(parent, m.parent_codes, order)[keys]).itertuples(index=False)
    top_keys = ", ".join(f"{show_key(r)} ×{int(m.parent_counts[i]):,}" for r, i in zip(krows, order))
    n = len(dup_codes)
    parts = [f"{n:,} {'/'.join(keys)} value{'s' * (n != 1)} appear{'s' * (n == 1)} more than once in {P} "
             f"(e.g. {top_keys})"] if n else []
    if n_pk and not same:
        parts.append(f"{n_pk:,} primary-key value{'s' * (n_pk != 1)} ({', '.join(pk)}) duplicated")
    consequence = f": every {rel.child} row matching a duplicated key is repeated once per copy; "
    if whole_pk:
        copies = meta.get("identical_copies", 0)
        desc = (f"{P} has duplicate parent rows — " + "; ".join(parts) + consequence
                + (f"{copies:,} of the duplicated rows are identical copies. " if copies else "")
                + f"The condition already uses {P}'s whole primary key: deduplicate {P} at the source (see the "
                  f"primary_key check of {P}/profile).")
    elif pk:
        missing = [c for c in pk if c not in keys]
        desc = "; ".join(parts) + consequence + missing_key_advice(rel, pk, missing, child_columns)
        if n_pk:
            desc += f" {P} also holds duplicate parent rows (see the primary_key check of {P}/profile)."
    else:
        desc = "; ".join(parts) + consequence + f"deduplicate {P} or add the distinguishing column to the join condition."
    return CheckOutcome("duplicate_parent_keys", ok, ERROR, desc,
                        {**meta, "examples": examples[:MAX_EXAMPLES], **mp.metadata()})


def _primary_key_duplicates(parent: pd.DataFrame, pk: list[str]) -> tuple[dict, list[dict]]:
    """Counts of duplicated primary-key values (empty without a primary key), how many of those rows
    are identical copies, and the parent rows that repeat them, sorted by the key where the values allow."""
    if not pk:
        return {}, []
    dmask = parent.duplicated(subset=pk, keep=False)
    meta = dict(primary_key=list(pk), duplicated_primary_keys=int(parent.loc[dmask, pk].drop_duplicates().shape[0]),
                parent_rows_with_duplicated_primary_key=int(dmask.sum()))
    if not dmask.any():
        return meta, []
    dup_rows = parent.loc[dmask]
    try:
        meta["identical_copies"] = int(dup_rows.duplicated(keep=False).sum())
    except TypeError:  # unhashable cells
        pass
    try:
        dup_rows = dup_rows.sort_values(pk, kind="stable")
    except TypeError:
        pass
    return meta, [{"duplicated_on": f"primary key ({', '.join(pk)})", **r} for r in example_rows(dup_rows)]


def temporal_consistency(rel: RelationshipSpec, child: pd.DataFrame, parent: pd.DataFrame, tc: str | None,
                         tp: str | None, ctx: list[str], mc: Masker = Masker()) -> tuple[dict | None, CheckOutcome | None]:
    """WARN when more than 5% of the child rows fall outside the parent's time range.

    Uses the given time columns, or else the first key pair with a datetime side. Returns the time
    ranges (None when there is no time to compare) and the check (None when there is no time; not
    passed, "could not be checked", when a side has no parseable timestamps).
    """
    if not (tc in child.columns and tp in parent.columns):
        tc = tp = None
        for c, p in zip(rel.child_keys, rel.parent_keys):  # a pair that joins two time columns
            if key_family(child[c]) == "datetime" or key_family(parent[p]) == "datetime":
                tc, tp = c, p
                break
    if tc is None:
        return None, None
    ct, pt = naive_utc(child[tc]), naive_utc(parent[tp])
    info: dict = {"child_column": tc, "parent_column": tp, "child_time_nulls": int(ct.isna().sum())}
    if ct.notna().sum() == 0 or pt.notna().sum() == 0:
        side, col = (rel.child, tc) if ct.notna().sum() == 0 else (rel.parent, tp)
        info["note"] = f"{side}.{col} has no parseable timestamps; not checked"
        raw = (child[tc] if side == rel.child else parent[tp]).dropna().astype(str).head(3).tolist()
        seen = f"e.g. {', '.join(map(repr, raw))}" if raw else "only NULLs"
        desc = (f"Temporal consistency could not be checked because {side}.{col} holds no parseable timestamps "
                f"({seen}); fix: store {side}.{col} as a TIMESTAMP (or CAST it) so both time ranges can be compared.")
        return info, CheckOutcome("temporal_consistency", False, WARN, desc, {**info, "examples": []})
    lo, hi = pt.min(), pt.max()
    before, after = (ct < lo).to_numpy(), (ct > hi).to_numpy()
    n = int(ct.notna().sum())
    share = float((before | after).sum() / n)
    info.update(child_min=ct.min(), child_max=ct.max(), parent_min=lo, parent_max=hi,
                share_before_parent_range=float(before.sum() / n), share_after_parent_range=float(after.sum() / n),
                share_outside_parent_range=share, rows_outside=int((before | after).sum()))
    ok = share <= 0.05
    desc = (f"{pct(share)} of {rel.child} rows ({info['rows_outside']:,}) have a {tc} outside the {rel.parent}.{tp} range "
            f"{lo} – {hi} ({rel.child} spans {ct.min()} – {ct.max()})")
    desc += (": within the 5% tolerance." if ok else
             f": those rows join {rel.parent} data from another period (temporal leakage or missing history); "
             f"restrict both tables to the same time window.")
    examples = mc.records(example_rows(child.loc[before | after, ctx]))
    return info, CheckOutcome("temporal_consistency", ok, WARN, desc, {**info, "examples": examples, **mc.metadata()})
