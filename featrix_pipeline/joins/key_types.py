"""The key_types check: do the key columns hold the same kind of value on both sides?

A mismatch (integer ↔ string, timestamp ↔ text) matches nothing, as in a warehouse; the check
says which CAST would fix it and what coverage the cast would give. Strings that match only after
trimming and upper-casing are reported as a warning with the coverage that cleaning would give.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from featrix_model.keys import SQL_TYPE, comparable, compatible, key_family, naive_utc
from sqlglot import exp

from featrix_pipeline.joins.codes import MAX_EXAMPLES, KeyMatch, KeyPair, pct, sample_values, sql_column, sql_text
from featrix_pipeline.joins.report import ERROR, WARN, CheckOutcome
from featrix_pipeline.privacy import Masker
from featrix_pipeline.spec import RelationshipSpec


def pair_types(rel: RelationshipSpec, child: pd.DataFrame, parent: pd.DataFrame, mc: Masker = Masker(),
               mp: Masker = Masker()) -> tuple[list[dict], list[KeyPair], list[KeyPair]]:
    """Per key pair: dtype families, compatibility and an explanation (``key_types``); the comparable
    series as they are (``typed``) and after the suggested CAST of a string side (``casted``).
    Example values in the explanations go through the maskers ``mc`` (child) and ``mp`` (parent)."""
    key_types, typed, casted = [], [], []
    for c, p in zip(rel.child_keys, rel.parent_keys):
        info, as_is, after_cast = _pair_type(rel, c, child[c], p, parent[p], mc, mp)
        key_types.append(info)
        typed.append(as_is)
        casted.append(after_cast)
    return key_types, typed, casted


def _pair_type(rel: RelationshipSpec, c: str, cs: pd.Series, p: str, ps: pd.Series, mc: Masker,
               mp: Masker) -> tuple[dict, KeyPair, KeyPair]:
    """One key pair described, with its comparable series as they are and after any CAST."""
    C, P = rel.child, rel.parent
    fc, fp = key_family(cs), key_family(ps)
    info = {"child_column": c, "parent_column": p, "child_dtype": str(cs.dtype), "parent_dtype": str(ps.dtype),
            "child_family": fc, "parent_family": fp, "child_examples": sample_values(cs, mask=lambda v: mc.value(c, v)),
            "parent_examples": sample_values(ps, mask=lambda v: mp.value(p, v)), "compatible": compatible(fc, fp)}
    side = f"{C}.{c} is {SQL_TYPE.get(fc, fc)} (pandas {cs.dtype}, e.g. {info['child_examples']})"
    other = f"{P}.{p} is {SQL_TYPE.get(fp, fp)} (pandas {ps.dtype}, e.g. {info['parent_examples']})"
    as_is = (comparable(cs, fc, fp), comparable(ps, fp, fc), info["compatible"])
    if fc == fp == "datetime" and (getattr(cs.dtype, "tz", None) is None) != (getattr(ps.dtype, "tz", None) is None):
        info["explanation"] = (f"both sides are datetime but only one has a time zone ({C}.{c}: {cs.dtype}, "
                               f"{P}.{p}: {ps.dtype}); compared in UTC, as TIMESTAMP WITH TIME ZONE = TIMESTAMP would.")
    elif fc == fp:
        info["explanation"] = f"both sides are {fc}."
    elif "empty" in (fc, fp):
        info["explanation"] = "one side holds only NULLs, nothing to compare."
    elif info["compatible"]:
        x = (cs if fc == "float" else ps).to_numpy(dtype="float64", na_value=np.nan)
        whole = bool(np.all(np.mod(x[~np.isnan(x)], 1) == 0))
        info["explanation"] = (f"compatible: {side} and {other}; integer and float keys compare equal "
                               + ("since the float side holds whole numbers only." if whole else
                                  "but the float side has fractional values that can never match an integer key."))
    else:
        info["explanation"] = f"{side} but {other}: the values never compare equal, so the join matches nothing; "
        return info, as_is, _suggest_cast(rel, info, cs, ps) or as_is
    return info, as_is, as_is


def _suggest_cast(rel: RelationshipSpec, info: dict, cs: pd.Series, ps: pd.Series) -> KeyPair | None:
    """Finish the explanation of a type mismatch. When one side is a string column and the other a
    number or timestamp, suggest casting the string side and return the pair as it would be after
    that CAST (its coverage is filled in later); otherwise ask for a conversion and return None."""
    fc, fp = info["child_family"], info["parent_family"]
    numeric_or_time = ("integer", "float", "datetime")
    if fc == "string" and fp in numeric_or_time:
        table, column, which, family = rel.child, info["child_column"], "child", fp
    elif fp == "string" and fc in numeric_or_time:
        table, column, which, family = rel.parent, info["parent_column"], "parent", fc
    else:
        info["explanation"] += "convert one side so both hold the same kind of value."
        return None
    info["cast_sql"] = sql_text(exp.cast(sql_column(table, column), SQL_TYPE[family]))
    info["explanation"] += f"cast the string side, e.g. {info['cast_sql']}."
    conv = naive_utc if family == "datetime" else (lambda s: pd.to_numeric(s, errors="coerce"))
    cs, ps = (conv(cs), ps) if which == "child" else (cs, conv(ps))
    fc, fp = key_family(cs), key_family(ps)
    info["coverage_after_cast"] = None  # filled in by key_types_check, once the match is known
    return comparable(cs, fc, fp), comparable(ps, fp, fc), compatible(fc, fp)


def key_types_check(rel: RelationshipSpec, child: pd.DataFrame, parent: pd.DataFrame, m: KeyMatch,
                    key_types: list[dict], typed: list[KeyPair], casted: list[KeyPair], mc: Masker = Masker(),
                    mp: Masker = Masker()) -> CheckOutcome:
    """ERROR when a key pair's types can never compare equal; WARN when string keys would match
    better once trimmed and upper-cased. Adds ``coverage_after_cast`` / ``coverage_after_normalize``
    to ``key_types`` along the way."""
    C, P = rel.child, rel.parent
    mismatched = [kt for kt in key_types if not kt["compatible"]]
    cast = [kt for kt in key_types if "coverage_after_cast" in kt]
    if cast:
        after = m.coverage_with(casted)
        for kt in cast:
            kt["coverage_after_cast"] = after
            kt["explanation"] += f" After {kt['cast_sql']} coverage would be {pct(after)}."
    if not mismatched:
        _hint_normalize(rel, m, key_types, typed)
    if mismatched:
        desc = "Key type mismatch in " + " ".join(f"{C}.{kt['child_column']} = {P}.{kt['parent_column']}: "
                                                  f"{kt['explanation']}" for kt in mismatched)
        ex = [{"column": f"{table}.{kt[f'{s}_column']}", "dtype": kt[f"{s}_dtype"], "values": kt[f"{s}_examples"]}
              for kt in mismatched for table, s in ((C, "child"), (P, "parent"))]
        return CheckOutcome("key_types", False, ERROR, desc, {"pairs": key_types, "examples": ex[:MAX_EXAMPLES]})
    hinted = next((kt for kt in key_types if "coverage_after_normalize" in kt), None)
    if hinted is not None:
        return CheckOutcome("key_types", False, WARN, hinted["explanation"],
                            {"pairs": key_types, "examples": _normalize_examples(rel, child, parent, m, hinted, mc, mp)})
    return CheckOutcome("key_types", True, ERROR, "Key types agree: " + "; ".join(
        f"{C}.{kt['child_column']} ↔ {P}.{kt['parent_column']}: {kt['explanation'].rstrip('.')}" for kt in key_types) + ".",
        {"pairs": key_types, "examples": []})


def _norm(s: pd.Series) -> pd.Series:
    """Keys as UPPER(TRIM(text))."""
    return s.astype("str").str.strip().str.upper()


def _hint_normalize(rel: RelationshipSpec, m: KeyMatch, key_types: list[dict], typed: list[KeyPair]) -> None:
    """When coverage is under the warning threshold and trimming and upper-casing the string key
    parts would raise it (by more than half a point), record that coverage and explain it."""
    strings = [i for i, kt in enumerate(key_types) if kt["child_family"] == kt["parent_family"] == "string"]
    if not (strings and m.coverage < rel.coverage_warn_below and m.n_keyed):
        return
    after = m.coverage_with([(_norm(t[0]), _norm(t[1]), True) if i in strings else t for i, t in enumerate(typed)])
    if after <= m.coverage + 0.005:
        return
    for i in strings:
        kt = key_types[i]
        kt["coverage_after_normalize"] = after
        ca, cb = sql_column(rel.child, kt["child_column"]), sql_column(rel.parent, kt["parent_column"])
        a, b = sql_text(ca), sql_text(cb)
        norm = sql_text(exp.EQ(this=exp.Upper(this=exp.Trim(this=ca)), expression=exp.Upper(this=exp.Trim(this=cb))))
        kt["explanation"] = (f"{a} and {b} are both strings but some keys differ only by whitespace or case: "
                             f"with {norm} coverage would rise from {pct(m.coverage)} "
                             f"to {pct(after)}; clean the keys at the source or normalise both sides.")


def _normalize_examples(rel: RelationshipSpec, child: pd.DataFrame, parent: pd.DataFrame, m: KeyMatch,
                        kt: dict, mc: Masker, mp: Masker) -> list[dict]:
    """Orphan child keys next to the parent key they equal once trimmed and upper-cased."""
    orphan_vals = child.loc[m.orphan, kt["child_column"]].astype("str")
    pnorm = parent[kt["parent_column"]].dropna().astype("str")
    lookup = pd.Series(pnorm.to_numpy(), index=pnorm.str.strip().str.upper().to_numpy())
    lookup = lookup[~lookup.index.duplicated()]
    hits = orphan_vals[orphan_vals.str.strip().str.upper().isin(lookup.index)].drop_duplicates().head(MAX_EXAMPLES)
    c, p = kt["child_column"], kt["parent_column"]
    return [{f"{rel.child}.{c}": mc.value(c, v), f"{rel.parent}.{p}": mp.value(p, lookup[v.strip().upper()])}
            for v in hits]
