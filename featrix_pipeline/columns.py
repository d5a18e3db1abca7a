"""Table profiling and the useless-column filter (spec §1.4, §16) applied with the spec's knowledge.

The modelling library decides what each column *is* and whether it carries information; this
module adds what only the dataset spec knows: which columns are keys (kept for joining, never
features), which are targets, and what the user forced in or out.
"""

from __future__ import annotations

import pandas as pd

from featrix_model.types import INTERNAL_PREFIX, ColumnProfile, profile_frame
from featrix_model.usefulness import UselessVerdict, find_useless_columns
from featrix_pipeline.privacy import Masker, allowed_columns, detect_personal_data
from featrix_pipeline.spec import DatasetSpec


def profile_table(spec: DatasetSpec, table: str, df: pd.DataFrame) -> dict:
    """Per column: semantic type (+reason), null/unique ratios, examples, stats, and its role.

    A column holding personal data (``featrix_pipeline.privacy``) says so (``personal_data``: its
    kind) and shows its examples and top values masked, unless the table's spec allows it."""
    keys = spec.key_columns(table)
    targets = {t.column for t in spec.targets_of(table) if not t.expression}
    profiles = profile_frame(df)
    verdicts = find_useless_columns(df, profiles)
    personal = detect_personal_data(df)
    allowed = allowed_columns(spec.tables[table])
    masker = Masker({} if "*" in allowed else {c: k for c, k in personal.items() if c not in allowed})
    cols = {}
    for name, prof in profiles.items():
        d = prof.to_dict()
        d["role"] = "key" if name in keys else "target" if name in targets else "feature"
        d["usefulness"] = verdicts[name].to_dict()
        if name in personal:
            d["personal_data"] = personal[name]
            d["personal_data_masked"] = name in masker.kinds
        if name in masker.kinds:
            d["examples"] = [str(masker.value(name, v)) for v in d["examples"]]
            for top in d["stats"].get("top_values", []):
                top["value"] = str(masker.value(name, top["value"]))
        cols[name] = d
    return {"table": table, "rows": int(len(df)), "primary_key": list(spec.tables[table].primary_key), "columns": cols}



def decide_columns(spec: DatasetSpec, table: str, profile: dict) -> dict[str, dict]:
    """One decision per column from the profile's usefulness verdicts and the spec's roles:
    ``{"keep": bool, "role": ..., "kind": ..., "reason": ..., "score": ..., "signals": ...}``."""
    t = spec.tables[table]
    decisions: dict[str, dict] = {}
    for name, col in profile["columns"].items():
        role = col.get("role", "feature")
        v = col["usefulness"]
        d = {"role": role, "keep": not v["exclude"], "kind": v["kind"], "score": v["score"],
             "signals": v["signals"], "reason": v["reason"]}
        if name.startswith(INTERNAL_PREFIX):
            d.update(keep=False, kind="internal", reason=f"Column '{name}' is internal Featrix metadata: stripped.")
        elif name in t.exclude_columns:
            d.update(keep=False, kind="spec_exclude", reason=f"Column '{name}' is listed in exclude_columns of table '{table}'.")
        elif name in t.keep_columns and not d["keep"]:
            d.update(keep=True, reason=f"{d['reason']} Kept anyway: listed in keep_columns of table '{table}'.")
        elif role in ("key", "target") and not d["keep"]:
            what = "used for joining (a key), not as a feature" if role == "key" else "a declared target"
            d.update(keep=True, reason=f"{d['reason']} Kept: it is {what}.")
        elif name == t.time_column and not d["keep"]:
            d.update(keep=True, reason=f"{d['reason']} Kept: it is the time_column of table '{table}'.")
        elif not d["keep"] and v["kind"] in ("identifier", "mostly_null"):
            d["reason"] += f" To keep it, list it in keep_columns of table '{table}'."
        decisions[name] = d
    return decisions


def filter_table(df: pd.DataFrame, decisions: dict[str, dict]) -> pd.DataFrame:
    """The table minus excluded columns; rows are never dropped."""
    keep = [c for c in df.columns if decisions[c]["keep"]]
    return df[keep]


def analysis_of(profile: dict, columns) -> dict:
    """The profile asset's per-column type and usefulness verdict for ``columns``, in the form the
    modelling library takes (``EmbeddingSpace.fit(analysis=...)``), so a table is profiled once."""
    cols = profile["columns"]
    return {c: (ColumnProfile.from_dict(cols[c]), UselessVerdict.from_dict(cols[c]["usefulness"]))
            for c in columns if c in cols}
