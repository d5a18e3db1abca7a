"""Join validation before training (spec §1.3, "Validating Join Accuracy").

``validate_join`` looks at one declared relationship (child = many side, parent = one side) with
the two tables as pandas frames and reports, as plain-words checks with example rows:

* key_types — do the key columns hold the same kind of value (int ↔ int, str ↔ str)? A mismatch
  matches nothing, as in a warehouse; the report says which CAST would fix it and what coverage
  the cast would give.
* coverage — share of child rows whose key finds a parent (warn / error thresholds from the spec).
* key_nulls — child rows with a NULL key (kept, never dropped, but counted).
* cardinality — declared vs observed; a "many_to_one" whose parent repeats keys multiplies rows.
* duplicate_parent_keys — duplicates in the parent's primary key and in its join key.
* temporal_consistency — only when both sides carry time: child rows outside the parent's range.

Distribution shift (KL divergence of each child column, and target class balance, between all
child rows and the rows that joined) is reported as metadata, not as a failing check.

Everything is vectorised: each key is factorised into integer codes once and the rest is bincount
arithmetic, so 336,776 flights × 26,115 weather rows take well under a second. Pure pandas/numpy.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from featrix_model.jsonable import to_jsonable
from featrix_pipeline.spec import Relationship

ERROR, WARN = "ERROR", "WARN"
MAX_EXAMPLES = 10
MAX_SHIFT_COLUMNS = 30
SQL_TYPE = {"integer": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "datetime": "TIMESTAMP", "bool": "BOOLEAN"}
ICON = {True: "✓", WARN: "⚠", ERROR: "✗"}


@dataclass
class CheckOutcome:
    name: str  # coverage | key_types | cardinality | duplicate_parent_keys | key_nulls | temporal_consistency
    passed: bool
    severity: str  # ERROR blocks downstream training; WARN does not (for passed checks: the severity it would carry)
    description: str
    metadata: dict = field(default_factory=dict)


@dataclass
class JoinReport:
    relationship: str
    child: str
    parent: str
    condition: str
    declared_cardinality: str
    child_rows: int
    parent_rows: int
    coverage: float  # share of child rows with non-null keys whose key finds a parent
    coverage_all_rows: float  # share of all child rows that find a parent
    key_null_ratio: float
    orphan_rows: int  # child rows with a non-null key that finds no parent
    orphan_examples: list[dict]  # one row per orphan key, most frequent first, with rows_with_this_key
    duplicate_parent_keys: int  # distinct parent join-key values held by more than one parent row
    duplicate_examples: list[dict]
    observed_cardinality: str  # in the declaration's left → right reading; "unknown" when nothing joins
    max_parents_per_child_key: int
    max_children_per_parent_key: int
    joined_rows: int  # rows a LEFT JOIN child → parent would produce (inner join count in checks metadata)
    key_types: list[dict]
    distribution_shift: dict
    temporal: dict | None
    checks: list[CheckOutcome]
    note: str = ""

    @property
    def blocking(self) -> list[CheckOutcome]:
        """Failed ERROR checks: these block downstream training."""
        return [c for c in self.checks if not c.passed and c.severity == ERROR]

    @property
    def ok(self) -> bool:
        return not self.blocking

    def to_dict(self) -> dict:
        d = to_jsonable(asdict(self))
        d["ok"] = self.ok
        return d

    def markdown(self) -> str:
        md = [f"### Join `{self.relationship}`: {self.child} → {self.parent}", "",
              f"`{self.condition}` — declared **{self.declared_cardinality}**, observed **{self.observed_cardinality}**", ""]
        if self.note:
            md += [f"> {self.note}", ""]
        md += _md_table(["metric", "value"], [
            [f"{self.child} rows (child)", f"{self.child_rows:,}"], [f"{self.parent} rows (parent)", f"{self.parent_rows:,}"],
            ["coverage (rows with a key)", f"{self.coverage:.1%}"], ["coverage (all rows)", f"{self.coverage_all_rows:.1%}"],
            ["rows with a NULL key", f"{self.key_null_ratio:.1%}"], ["orphan rows", f"{self.orphan_rows:,}"],
            ["duplicated parent keys", f"{self.duplicate_parent_keys:,}"],
            ["max parents per child key", f"{self.max_parents_per_child_key:,}"],
            ["max children per parent key", f"{self.max_children_per_parent_key:,}"],
            ["rows after LEFT JOIN", f"{self.joined_rows:,}"]])
        md += ["", "**Checks**", ""]
        md += [f"- {ICON[True] if c.passed else ICON.get(c.severity, '✗')} **{c.name}** ({c.severity}): {c.description}"
               for c in self.checks]
        for kt in self.key_types:
            if not kt["compatible"] or "coverage_after_normalize" in kt:
                md += ["", f"**Key types** `{kt['child_column']}` ↔ `{kt['parent_column']}`: {kt['explanation']}"]
        if self.orphan_examples:
            md += ["", f"**Orphan examples** ({self.child} rows whose key finds no {self.parent} row)", ""]
            md += _md_records(self.orphan_examples)
        if self.duplicate_examples:
            md += ["", f"**Duplicated {self.parent} rows**", ""] + _md_records(self.duplicate_examples)
        top = self.distribution_shift.get("top", [])[:5]
        if top:
            md += ["", "**Distribution shift** (KL divergence of the joined rows from all child rows, top 5)", ""]
            md += _md_table(["column", "KL (bits)", "most shifted value", "all rows", "joined rows"],
                            [[t["column"], f"{t['kl_bits']:.4f}", t["most_shifted"], f"{t['share_all']:.1%}",
                              f"{t['share_joined']:.1%}"] for t in top])
        for name, t in self.distribution_shift.get("targets", {}).items():
            if "before" in t:
                md += ["", f"Target `{name}` ({t['table']}) balance before → after join (KL {t['kl_bits']:.4f} bits): "
                       + ", ".join(f"{k} {v:.1%} → {t['after'].get(k, 0):.1%}" for k, v in list(t["before"].items())[:8])]
        if self.temporal and "child_min" in self.temporal:
            t = self.temporal
            md += ["", f"**Time ranges**: {self.child}.{t['child_column']} {t['child_min']} – {t['child_max']}; "
                   f"{self.parent}.{t['parent_column']} {t['parent_min']} – {t['parent_max']}; "
                   f"{t['share_outside_parent_range']:.1%} of child rows outside the parent range."]
        return "\n".join(md)


# ------------------------------------------------------------------------------ helpers


def _rows(df: pd.DataFrame, n: int = MAX_EXAMPLES) -> list[dict]:
    return to_jsonable(df.head(n).to_dict("records"))


def _md_table(header: list[str], rows: list[list]) -> list[str]:
    esc = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(esc(v) for v in r) + " |" for r in rows]


def _md_records(records: list[dict]) -> list[str]:
    cols = list(dict.fromkeys(k for r in records for k in r))
    fmt = lambda v: "" if v is None else f"{v:.6g}" if isinstance(v, float) else v  # noqa: E731
    return _md_table(cols, [[fmt(r.get(c)) for c in cols] for r in records])


def _family(s: pd.Series) -> str:
    """integer | float | string | datetime | bool | empty (only NULLs) | other."""
    t = s.dtype
    if isinstance(t, pd.CategoricalDtype):
        return _family(pd.Series(s.cat.categories)) if s.notna().any() else "empty"
    if pd.api.types.is_bool_dtype(t):
        return "bool"
    if pd.api.types.is_integer_dtype(t):
        return "integer"
    if pd.api.types.is_float_dtype(t):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(t):
        return "datetime"
    if pd.api.types.is_string_dtype(t) and t != object:
        return "string"
    return {"string": "string", "integer": "integer", "floating": "float", "mixed-integer-float": "float",
            "decimal": "float", "boolean": "bool", "datetime": "datetime", "datetime64": "datetime",
            "date": "datetime", "empty": "empty"}.get(pd.api.types.infer_dtype(s, skipna=True), "other")


def _naive_utc(s: pd.Series) -> pd.Series:
    """Any datetime-ish series as naive UTC datetime64[us]; unparseable values become NaT."""
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.astype("datetime64[us]")


def _comparable(s: pd.Series, fam: str, other: str) -> pd.Series:
    """Representation in which equal keys of compatible families compare equal."""
    s = s.reset_index(drop=True)
    try:
        if fam == other == "integer":
            return s.astype("Int64")
        if fam in ("integer", "float") and other in ("integer", "float"):
            return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan))
        if fam == other == "datetime":
            return _naive_utc(s)
        if fam == other == "string":
            return s.astype("str")
        if fam == other == "bool":
            return s.astype("boolean")
    except (TypeError, ValueError, OverflowError):
        pass
    return s.astype(object)


def _compatible(fc: str, fp: str) -> bool:
    return fc == fp or "empty" in (fc, fp) or {fc, fp} == {"integer", "float"}


def _factorize(s: pd.Series) -> tuple[np.ndarray, int]:
    try:
        codes, uniques = pd.factorize(s)
    except TypeError:  # unhashable values
        codes, uniques = pd.factorize(s.astype(str).where(s.notna()))
    return codes.astype(np.int64), len(uniques)


def _key_codes(pairs: list[tuple[pd.Series, pd.Series, bool]]) -> tuple[np.ndarray, np.ndarray, int]:
    """One integer code per row for the (composite) key, -1 where any part is NULL; equal code ⇔ equal key.
    Pairs marked incompatible get codes that can never match (a type mismatch matches nothing)."""
    combined = None
    for c, p, compatible in pairs:
        if compatible:
            codes, n = _factorize(pd.concat([c, p], ignore_index=True))
        else:
            cc, nc = _factorize(c)
            pc, n = _factorize(p)
            codes, n = np.concatenate([np.where(cc >= 0, cc + n, -1), pc]), n + nc
        if combined is None:
            combined = codes
        else:
            null = (combined < 0) | (codes < 0)
            vals = combined * max(n, 1) + codes
            combined = np.full(len(vals), -1, dtype=np.int64)
            combined[~null] = pd.factorize(vals[~null])[0]
    nc = len(pairs[0][0])
    return combined[:nc], combined[nc:], int(max(combined.max(initial=-1) + 1, 1))


def _examples(s: pd.Series, n: int = 3) -> str:
    vals = s.head(5000).dropna().drop_duplicates().head(n).tolist()
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in vals) or "only NULLs"


def _context_columns(df: pd.DataFrame, keys: Sequence[str], time_column: str | None) -> list[str]:
    """Key columns, the time column, then up to four others (strings and integers first: ids, categories)."""
    def rank(c: str) -> int:
        t = df[c].dtype
        return 0 if pd.api.types.is_string_dtype(t) else 1 if pd.api.types.is_integer_dtype(t) else 2

    others = sorted((c for c in df.columns if c not in keys and c != time_column), key=rank)[:4]
    return list(dict.fromkeys([*keys, *([time_column] if time_column in df.columns else []), *others]))


def _first_rows(df: pd.DataFrame, codes: np.ndarray, wanted: Sequence[int],
                mask: np.ndarray | None = None) -> pd.DataFrame:
    """The first row of ``df`` holding each wanted key code (in the order given)."""
    idx = np.flatnonzero(mask) if mask is not None else np.arange(len(codes))
    first = pd.Series(idx, index=codes[idx])
    first = first[~first.index.duplicated()]
    return df.iloc[first.loc[list(wanted)].to_numpy()]


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _show_key(values: Sequence) -> str:
    """A key for prose: composite parts joined by '/', strings with stray whitespace quoted."""
    return "/".join(repr(v) if isinstance(v, str) and v != v.strip() else str(v) for v in values)


# ------------------------------------------------------------------------------ distribution shift


def _bins(s: pd.Series, max_card: int | None = 200) -> tuple[np.ndarray, list[str]] | None:
    """Bin codes per row and labels: quantile bins for numbers, top-20 values + (other) for categories;
    the last bin is NULL. None for columns that cannot be binned (datetimes, high-cardinality text)."""
    t = s.dtype
    if pd.api.types.is_datetime64_any_dtype(t) or pd.api.types.is_timedelta64_dtype(t):
        return None
    numeric = pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)
    nunique = s.nunique(dropna=True)
    isna = s.isna().to_numpy()
    if numeric and nunique > 20:
        x = s.to_numpy(dtype="float64", na_value=np.nan)
        edges = np.unique(np.quantile(x[~isna], np.linspace(0, 1, 11)))
        codes = np.searchsorted(edges[1:-1], x, side="right")
        labels = [f"[{edges[i]:g}, {edges[i + 1]:g}{']' if i == len(edges) - 2 else ')'}" for i in range(len(edges) - 1)]
    elif numeric or (max_card is None or nunique <= max_card):
        top = s.value_counts(dropna=True).index[:20]
        codes = pd.Categorical(s, categories=top).codes.astype(np.int64)
        codes[(codes < 0) & ~isna] = len(top)
        labels = [str(v) for v in top] + ["(other)"]
    else:
        return None
    codes = np.where(isna, len(labels), codes)
    return codes, labels + ["NULL"]


def _kl(all_counts: np.ndarray, joined_counts: np.ndarray, labels: list[str]) -> dict:
    """KL(joined ‖ all) in bits with +0.5 smoothing, and the value whose share moved most."""
    b = len(labels)
    p = (all_counts + 0.5) / (all_counts.sum() + 0.5 * b)
    q = (joined_counts + 0.5) / (joined_counts.sum() + 0.5 * b)
    sa, sj = all_counts / max(all_counts.sum(), 1), joined_counts / max(joined_counts.sum(), 1)
    i = int(np.argmax(np.abs(sj - sa)))
    return {"kl_bits": float(np.sum(q * np.log2(q / p))), "most_shifted": labels[i],
            "share_all": float(sa[i]), "share_joined": float(sj[i])}


def _distribution_shift(rel: Relationship, child: pd.DataFrame, parent: pd.DataFrame, matched: np.ndarray,
                        child_codes: np.ndarray, parent_codes: np.ndarray, k: int,
                        target_columns: dict[str, pd.Series] | None) -> dict:
    out: dict = {"direction": "KL(joined child rows ‖ all child rows), bits", "joined_child_rows": int(matched.sum()),
                 "columns": {}, "top": [], "targets": {}}
    if not matched.any() or matched.all():
        out["note"] = "no child row joined" if not matched.any() else "every child row joined: no selection shift"
    else:
        for c in [c for c in child.columns if c not in rel.child_keys]:
            if len(out["columns"]) >= MAX_SHIFT_COLUMNS:
                break
            try:
                b = _bins(child[c])
            except (TypeError, ValueError):  # unhashable or unorderable values: skip the column
                b = None
            if b is not None:
                codes, labels = b
                out["columns"][c] = _kl(np.bincount(codes, minlength=len(labels)),
                                        np.bincount(codes[matched], minlength=len(labels)), labels)
        out["top"] = sorted(({"column": c, **v} for c, v in out["columns"].items()), key=lambda r: -r["kl_bits"])[:10]
    child_per_key = np.bincount(child_codes[child_codes >= 0], minlength=k)
    for name, s in (target_columns or {}).items():
        table = name.split(".", 1)[0] if "." in name else None
        if table not in (rel.child, rel.parent):
            table = rel.child if len(s) == len(child) else rel.parent if len(s) == len(parent) else None
        if table is None:
            out["targets"][name] = {"note": f"length {len(s):,} matches neither {rel.child} nor {rel.parent}; skipped"}
            continue
        try:
            b = _bins(s.reset_index(drop=True), max_card=None)
        except (TypeError, ValueError):
            b = None
        if b is None or len(s) != (len(child) if table == rel.child else len(parent)):
            out["targets"][name] = {"table": table, "note": "not a class or number aligned with its table; skipped"}
            continue
        codes, labels = b
        if table == rel.child:
            before, after = np.bincount(codes, minlength=len(labels)), np.bincount(codes[matched], minlength=len(labels))
        else:  # each parent row appears once per child row that joins it
            before = np.bincount(codes, minlength=len(labels))
            weights = np.where(parent_codes >= 0, child_per_key[np.maximum(parent_codes, 0)], 0)
            after = np.bincount(codes, weights=weights, minlength=len(labels)).astype(np.int64)
        keep = (before + after) > 0
        out["targets"][name] = {
            "table": table, "kl_bits": _kl(before, after, labels)["kl_bits"],
            "before": {l: float(v) for l, v, kp in zip(labels, before / max(before.sum(), 1), keep) if kp},
            "after": {l: float(v) for l, v, kp in zip(labels, after / max(after.sum(), 1), keep) if kp}}
    return out


# ------------------------------------------------------------------------------ checks


def _temporal(rel: Relationship, child: pd.DataFrame, parent: pd.DataFrame, tc: str | None, tp: str | None,
              ctx: list[str]) -> tuple[dict | None, CheckOutcome | None]:
    if not (tc in child.columns and tp in parent.columns):
        tc = tp = None
        for c, p in rel.pairs:  # a pair that joins two time columns
            if _family(child[c]) == "datetime" or _family(parent[p]) == "datetime":
                tc, tp = c, p
                break
    if tc is None:
        return None, None
    ct, pt = _naive_utc(child[tc]), _naive_utc(parent[tp])
    info: dict = {"child_column": tc, "parent_column": tp, "child_time_nulls": int(ct.isna().sum())}
    if ct.notna().sum() == 0 or pt.notna().sum() == 0:
        info["note"] = "one side has no parseable timestamps; not checked"
        return info, None
    lo, hi = pt.min(), pt.max()
    before, after = (ct < lo).to_numpy(), (ct > hi).to_numpy()
    n = int(ct.notna().sum())
    share = float((before | after).sum() / n)
    info.update(child_min=ct.min(), child_max=ct.max(), parent_min=lo, parent_max=hi,
                share_before_parent_range=float(before.sum() / n), share_after_parent_range=float(after.sum() / n),
                share_outside_parent_range=share, rows_outside=int((before | after).sum()))
    ok = share <= 0.05
    desc = (f"{_pct(share)} of {rel.child} rows ({info['rows_outside']:,}) have a {tc} outside the {rel.parent}.{tp} range "
            f"{lo} – {hi} ({rel.child} spans {ct.min()} – {ct.max()})")
    desc += (": within the 5% tolerance." if ok else
             f": those rows join {rel.parent} data from another period (temporal leakage or missing history); "
             f"restrict both tables to the same time window.")
    examples = _rows(child.loc[before | after, ctx])
    return info, CheckOutcome("temporal_consistency", ok, WARN, desc, {**info, "examples": examples})


def _duplicates(rel: Relationship, parent: pd.DataFrame, parent_codes: np.ndarray, parent_counts: np.ndarray,
                pk: Sequence[str]) -> tuple[CheckOutcome, int, list[dict]]:
    keys = rel.parent_keys
    dup_codes = np.flatnonzero(parent_counts > 1)
    meta: dict = {"duplicated_join_keys": int(len(dup_codes)),
                  "parent_rows_with_duplicated_join_key": int(parent_counts[dup_codes].sum())}
    examples: list[dict] = []
    pk = [c for c in pk if c in parent.columns]
    same = set(pk) == set(keys)
    if pk:
        dmask = parent.duplicated(subset=pk, keep=False)
        meta.update(primary_key=list(pk), duplicated_primary_keys=int(parent.loc[dmask, pk].drop_duplicates().shape[0]),
                    parent_rows_with_duplicated_primary_key=int(dmask.sum()))
        if dmask.any():
            rows = parent.loc[dmask]
            try:
                rows = rows.sort_values(pk, kind="stable")
            except TypeError:
                pass
            examples += [{"duplicated_on": f"primary key ({', '.join(pk)})", **r} for r in _rows(rows)]
    order = dup_codes[np.argsort(-parent_counts[dup_codes], kind="stable")][:3]
    if len(dup_codes) and not same:
        sel = np.flatnonzero(np.isin(parent_codes, order))
        sel = sel[pd.Series(parent_codes[sel]).groupby(parent_codes[sel]).cumcount().to_numpy() < 4]  # 4 rows per key
        rows = parent.iloc[sel]
        examples += [{"duplicated_on": f"join key ({', '.join(keys)})", **r} for r in _rows(rows)]
    n_pk = meta.get("duplicated_primary_keys", 0)
    ok = not len(dup_codes) and not n_pk
    if ok:
        desc = f"{rel.parent} has one row per {', '.join(keys)}"
        desc += f" and per primary key ({', '.join(pk)})." if pk and not same else "."
    else:
        krows = _first_rows(parent, parent_codes, order)[keys].itertuples(index=False)
        top_keys = ", ".join(f"{_show_key(r)} ×{int(parent_counts[i]):,}" for r, i in zip(krows, order))
        n = len(dup_codes)
        parts = [f"{n:,} {'/'.join(keys)} value{'s' * (n != 1)} appear{'s' * (n == 1)} more than once in {rel.parent} "
                 f"(e.g. {top_keys})"] if n else []
        if n_pk and not same:
            parts.append(f"{n_pk:,} primary-key value{'s' * (n_pk != 1)} ({', '.join(pk)}) duplicated")
        desc = ("; ".join(parts) + f": every {rel.child} row matching a duplicated key is repeated once per copy; "
                f"deduplicate {rel.parent} or add the distinguishing column to the join condition.")
    examples = examples[:MAX_EXAMPLES]
    return CheckOutcome("duplicate_parent_keys", ok, ERROR, desc, {**meta, "examples": examples}), int(len(dup_codes)), examples


def _pair_types(rel: Relationship, child: pd.DataFrame, parent: pd.DataFrame) -> tuple[list[dict], list, list]:
    """Per key pair: dtype families, compatibility, explanation; the comparable series as they are
    (``typed``) and after the suggested CAST of a string side (``casted``)."""
    C, P = rel.child, rel.parent
    key_types, typed, casted = [], [], []
    for c, p in rel.pairs:
        cs, ps = child[c], parent[p]
        fc, fp = _family(cs), _family(ps)
        info = {"child_column": c, "parent_column": p, "child_dtype": str(cs.dtype), "parent_dtype": str(ps.dtype),
                "child_family": fc, "parent_family": fp, "child_examples": _examples(cs), "parent_examples": _examples(ps),
                "compatible": _compatible(fc, fp)}
        side = f"{C}.{c} is {SQL_TYPE.get(fc, fc)} (pandas {cs.dtype}, e.g. {info['child_examples']})"
        other = f"{P}.{p} is {SQL_TYPE.get(fp, fp)} (pandas {ps.dtype}, e.g. {info['parent_examples']})"
        typed.append((_comparable(cs, fc, fp), _comparable(ps, fp, fc), info["compatible"]))
        casted.append(typed[-1])
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
            fix = ((C, c, "child", fp) if fc == "string" and fp in ("integer", "float", "datetime") else
                   (P, p, "parent", fc) if fp == "string" and fc in ("integer", "float", "datetime") else None)
            info["explanation"] = f"{side} but {other}: the values never compare equal, so the join matches nothing; "
            if fix is None:
                info["explanation"] += "convert one side so both hold the same kind of value."
                key_types.append(info)
                continue
            info["cast_sql"] = f"CAST({fix[0]}.{fix[1]} AS {SQL_TYPE[fix[3]]})"
            info["explanation"] += f"cast the string side, e.g. {info['cast_sql']}."
            conv = _naive_utc if fix[3] == "datetime" else (lambda s: pd.to_numeric(s, errors="coerce"))
            cs, ps = (conv(cs), ps) if fix[2] == "child" else (cs, conv(ps))
            fc, fp = _family(cs), _family(ps)
            casted[-1] = (_comparable(cs, fc, fp), _comparable(ps, fp, fc), _compatible(fc, fp))
            info["coverage_after_cast"] = None  # filled in below
        key_types.append(info)

    return key_types, typed, casted


def validate_join(rel: Relationship, child: pd.DataFrame, parent: pd.DataFrame, *,
                  parent_primary_key: Sequence[str] = (), child_time_column: str | None = None,
                  parent_time_column: str | None = None,
                  target_columns: dict[str, pd.Series] | None = None) -> JoinReport:
    """Validate ``rel`` on the two frames; never raises on bad data, never mutates its inputs."""
    C, P, ck, pk = rel.child, rel.parent, rel.child_keys, rel.parent_keys
    n_child, n_parent = len(child), len(parent)
    base = dict(relationship=rel.name, child=C, parent=P, condition=rel.condition,
                declared_cardinality=rel.cardinality, child_rows=n_child, parent_rows=n_parent, note=rel.note)
    missing = [f"{C}.{c}" for c in ck if c not in child.columns] + [f"{P}.{p}" for p in pk if p not in parent.columns]
    if missing:
        desc = (f"Join {C} → {P} cannot run: column(s) {', '.join(missing)} are missing; "
                f"fix the condition `{rel.condition}` or the source tables.")
        return JoinReport(**base, coverage=0.0, coverage_all_rows=0.0, key_null_ratio=0.0, orphan_rows=n_child,
                          orphan_examples=[], duplicate_parent_keys=0, duplicate_examples=[], observed_cardinality="unknown",
                          max_parents_per_child_key=0, max_children_per_parent_key=0, joined_rows=n_child, key_types=[],
                          distribution_shift={}, temporal=None,
                          checks=[CheckOutcome("key_types", False, ERROR, desc, {"missing_columns": missing, "examples": []}),
                                  CheckOutcome("coverage", False, ERROR, desc, {"examples": []})])
    ctx = _context_columns(child, ck, child_time_column)
    checks: list[CheckOutcome] = []

    key_types, typed, casted = _pair_types(rel, child, parent)

    # ---- match: one integer code per key, then bincount arithmetic
    child_codes, parent_codes, k = _key_codes(typed)
    keyed = child_codes >= 0
    parent_counts = np.bincount(parent_codes[parent_codes >= 0], minlength=k)
    child_counts = np.bincount(child_codes[keyed], minlength=k)
    per_row = np.where(keyed, parent_counts[np.maximum(child_codes, 0)], 0)
    matched = per_row > 0
    n_keyed, n_matched = int(keyed.sum()), int(matched.sum())
    coverage = n_matched / n_keyed if n_keyed else 0.0

    def coverage_with(pairs) -> float:
        cc, pc, kk = _key_codes(pairs)
        hit = np.bincount(pc[pc >= 0], minlength=kk)[np.maximum(cc, 0)] > 0
        return float((hit & keyed).sum() / n_keyed) if n_keyed else 0.0

    mismatched = [i for i, kt in enumerate(key_types) if not kt["compatible"]]
    cast = [i for i, kt in enumerate(key_types) if "coverage_after_cast" in kt]
    if cast:
        after = coverage_with(casted)
        for i in cast:
            key_types[i]["coverage_after_cast"] = after
            key_types[i]["explanation"] += f" After {key_types[i]['cast_sql']} coverage would be {_pct(after)}."
    strings = [i for i, kt in enumerate(key_types) if kt["child_family"] == kt["parent_family"] == "string"]
    if not mismatched and strings and coverage < rel.coverage_warn_below and n_keyed:
        norm = lambda s: s.astype("str").str.strip().str.upper()  # noqa: E731
        after = coverage_with([(norm(t[0]), norm(t[1]), True) if i in strings else t for i, t in enumerate(typed)])
        if after > coverage + 0.005:
            for i in strings:
                kt = key_types[i]
                kt["coverage_after_normalize"] = after
                a, b = f"{C}.{kt['child_column']}", f"{P}.{kt['parent_column']}"
                kt["explanation"] = (f"{a} and {b} are both strings but some keys differ only by whitespace or case: "
                                     f"with UPPER(TRIM({a})) = UPPER(TRIM({b})) coverage would rise from {_pct(coverage)} "
                                     f"to {_pct(after)}; clean the keys at the source or normalise both sides.")
    if mismatched:
        desc = "Key type mismatch in " + " ".join(f"{C}.{key_types[i]['child_column']} = {P}.{key_types[i]['parent_column']}: "
                                                  f"{key_types[i]['explanation']}" for i in mismatched)
        ex = [{"column": f"{table}.{key_types[i][f'{s}_column']}", "dtype": key_types[i][f"{s}_dtype"],
               "values": key_types[i][f"{s}_examples"]} for i in mismatched for table, s in ((C, "child"), (P, "parent"))]
        checks.append(CheckOutcome("key_types", False, ERROR, desc, {"pairs": key_types, "examples": ex[:MAX_EXAMPLES]}))
    elif any("coverage_after_normalize" in kt for kt in key_types):
        kt = next(kt for kt in key_types if "coverage_after_normalize" in kt)
        orphan_vals = child.loc[keyed & ~matched, kt["child_column"]].astype("str")
        pnorm = parent[kt["parent_column"]].dropna().astype("str")
        lookup = pd.Series(pnorm.to_numpy(), index=pnorm.str.strip().str.upper().to_numpy())
        lookup = lookup[~lookup.index.duplicated()]
        hits = orphan_vals[orphan_vals.str.strip().str.upper().isin(lookup.index)].drop_duplicates().head(MAX_EXAMPLES)
        ex = [{f"{C}.{kt['child_column']}": v, f"{P}.{kt['parent_column']}": lookup[v.strip().upper()]} for v in hits]
        checks.append(CheckOutcome("key_types", False, WARN, kt["explanation"], {"pairs": key_types, "examples": ex}))
    else:
        checks.append(CheckOutcome("key_types", True, ERROR, "Key types agree: " + "; ".join(
            f"{C}.{kt['child_column']} ↔ {P}.{kt['parent_column']}: {kt['explanation'].rstrip('.')}" for kt in key_types) + ".",
            {"pairs": key_types, "examples": []}))

    # ---- coverage and orphans
    orphan = keyed & ~matched
    vc = pd.Series(child_codes[orphan]).value_counts().head(MAX_EXAMPLES)
    orphan_df = _first_rows(child, child_codes, vc.index, orphan)[ctx].copy() if len(vc) else child.iloc[:0][ctx].copy()
    orphan_df["rows_with_this_key"] = vc.to_numpy()
    orphan_examples = _rows(orphan_df)
    top_keys = [{**{c: r[c] for c in ck}, "rows": r["rows_with_this_key"]} for r in orphan_examples]
    keys_txt = ", ".join(f"{_show_key([r[c] for c in ck])} ({r['rows']:,})" for r in top_keys[:5])
    ck_txt = " + ".join(ck)
    level = ERROR if coverage < rel.coverage_error_below else WARN if coverage < rel.coverage_warn_below else None
    desc = (f"Join {C} → {P} has {_pct(coverage)} coverage: {int(orphan.sum()):,} of {n_keyed:,} {C} rows with a non-NULL "
            f"{ck_txt} find no {P} row" + (f" (top orphan keys: {keys_txt})" if keys_txt else "") + ".")
    if n_keyed == 0:
        desc = f"Join {C} → {P} cannot match anything: {C} has no rows with a non-NULL {ck_txt}."
    elif mismatched:
        desc += " Nothing matches because the key types differ (see key_types)."
    desc += (f" Below the {_pct(rel.coverage_error_below)} error threshold: fix the keys before training." if level == ERROR else
             f" Below the {_pct(rel.coverage_warn_below)} warning threshold: review data quality." if level == WARN else
             f" At or above the {_pct(rel.coverage_warn_below)} threshold.")
    meta = {"coverage": coverage, "coverage_all_rows": n_matched / n_child if n_child else 0.0, "orphan_rows": int(orphan.sum()),
            "warn_below": rel.coverage_warn_below, "error_below": rel.coverage_error_below, "top_orphan_keys": top_keys,
            "examples": orphan_examples}
    if rel.note:
        meta["note"] = rel.note
    checks.append(CheckOutcome("coverage", level is None, level or ERROR, desc, meta))

    # ---- key nulls
    null_ratio = 1 - n_keyed / n_child if n_child else 0.0
    per_col = {c: float(child[c].isna().mean()) if n_child else 0.0 for c in ck}
    ok = null_ratio <= rel.max_key_null_ratio
    desc = (f"{_pct(null_ratio)} of {C} rows ({n_child - n_keyed:,}) have a NULL {ck_txt}; they are kept without {P} data, "
            + (f"within the {_pct(rel.max_key_null_ratio)} limit." if ok else
               f"above the {_pct(rel.max_key_null_ratio)} limit: fix the source or raise max_key_null_ratio with a note."))
    checks.append(CheckOutcome("key_nulls", ok, WARN, desc, {"null_ratio": null_ratio, "per_column": per_col,
                                                             "examples": _rows(child.loc[~keyed, ctx])}))

    # ---- cardinality
    max_parents = int(per_row.max(initial=0))
    max_children = int(child_counts[parent_counts > 0].max(initial=0))
    child_frame = f"{'many' if max_children > 1 else 'one'}_to_{'many' if max_parents > 1 else 'one'}"
    observed = child_frame if rel.left == C else "_to_".join(reversed(child_frame.split("_to_")))
    if n_matched == 0:
        observed = "unknown"  # nothing joins: the relationship cannot be observed
    inner_rows = int(per_row.sum())
    joined_rows = inner_rows + int((~matched).sum())
    too_many_parents = max_parents > 1
    too_many_children = rel.cardinality == "one_to_one" and max_children > 1
    score = np.where(parent_counts > 1 if too_many_parents else child_counts > 1, child_counts * parent_counts, 0)
    top = np.argsort(-score, kind="stable")[:MAX_EXAMPLES] if (too_many_parents or too_many_children) else []
    top = [i for i in top if score[i] > 0]
    card_ex = _rows(_first_rows(parent, parent_codes, top)[pk]) if top else []
    for r, i in zip(card_ex, top):
        r.update({f"{C}_rows": int(child_counts[i]), f"{P}_rows": int(parent_counts[i]),
                  "joined_rows": int(child_counts[i] * parent_counts[i])})
    factor = joined_rows / n_child if n_child else 1.0
    if too_many_parents:
        desc = (f"Declared {rel.cardinality} but 1 {C} row matches up to {max_parents:,} {P} rows: the join would produce "
                f"{joined_rows:,} rows from {n_child:,} (×{factor:.4g}) — really {observed}; add the missing key column to "
                f"the condition or deduplicate {P}.")
    elif too_many_children:
        desc = (f"Declared one_to_one but one {P} row is matched by up to {max_children:,} {C} rows; "
                f"declare many_to_one ({C} → {P}) or fix the keys.")
    elif n_matched == 0:
        desc = f"Could not be observed: no {C} row finds a {P} row (see coverage/key_types)."
    else:
        desc = f"Declared {rel.cardinality}, observed {observed}: the join keeps {n_child:,} {C} rows (no row multiplication)."
    checks.append(CheckOutcome("cardinality", not (too_many_parents or too_many_children), ERROR, desc, {
        "observed": observed, "max_parents_per_child_key": max_parents, "max_children_per_parent_key": max_children,
        "left_join_rows": joined_rows, "inner_join_rows": inner_rows, "child_rows": n_child, "multiplication": factor,
        "examples": card_ex}))

    # ---- duplicate parent keys
    dup_check, n_dup, dup_examples = _duplicates(rel, parent, parent_codes, parent_counts, parent_primary_key)
    checks.append(dup_check)

    # ---- temporal + distribution shift: informative extras, must never break the report
    temporal = None
    try:
        temporal, tcheck = _temporal(rel, child, parent, child_time_column, parent_time_column, ctx)
        if tcheck:
            checks.append(tcheck)
    except Exception as e:  # noqa: BLE001
        temporal = {"error": f"{type(e).__name__}: {e}"}
    try:
        shift = _distribution_shift(rel, child, parent, matched, child_codes, parent_codes, k, target_columns)
    except Exception as e:  # noqa: BLE001
        shift = {"error": f"{type(e).__name__}: {e}"}

    return JoinReport(**base, coverage=coverage, coverage_all_rows=meta["coverage_all_rows"], key_null_ratio=null_ratio,
                      orphan_rows=int(orphan.sum()), orphan_examples=orphan_examples, duplicate_parent_keys=n_dup,
                      duplicate_examples=dup_examples, observed_cardinality=observed, max_parents_per_child_key=max_parents,
                      max_children_per_parent_key=max_children, joined_rows=joined_rows, key_types=key_types,
                      distribution_shift=shift, temporal=temporal, checks=checks)
