"""Great Expectations (Core 1.x) suites per table, run in memory on the snapshot.

``dagster-ge`` only supports GX < 1.0, so this wraps GX 1.x directly: an ephemeral context, a
pandas data source per table, one suite built from the spec (primary key not null and unique,
foreign-key null ratio) and the profile (value types, email/URL shapes). Failed expectations
carry example rows taken from the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from featrix_pipeline.privacy import Masker, allowed_columns
from featrix_pipeline.spec import DatasetSpec
from featrix_model.jsonable import to_jsonable

EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
URL_RE = r"^(https?|ftp)://|^www\."
MAX_EXAMPLES = 5


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str
    success: bool
    unexpected_count: int
    unexpected_percent: float
    why: str
    examples: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return to_jsonable(self.__dict__)


def build_expectations(spec: DatasetSpec, table: str, profile: dict) -> list[tuple[object, str]]:
    """(GX expectation, plain-words reason) pairs for one table."""
    import great_expectations as gx

    E = gx.expectations
    t = spec.tables[table]
    out: list[tuple[object, str]] = [(E.ExpectTableRowCountToBeBetween(min_value=1), "the table has rows")]
    for c in t.primary_key:
        out.append((E.ExpectColumnValuesToNotBeNull(column=c), f"primary key column '{c}' is never null"))
    if len(t.primary_key) == 1:
        out.append((E.ExpectColumnValuesToBeUnique(column=t.primary_key[0]), f"primary key '{t.primary_key[0]}' is unique"))
    else:
        out.append((E.ExpectCompoundColumnsToBeUnique(column_list=list(t.primary_key)),
                    f"primary key ({', '.join(t.primary_key)}) is unique"))
    for rel in spec.relationships:
        if rel.child == table:
            for c in rel.child_keys:
                out.append((E.ExpectColumnValuesToNotBeNull(column=c, mostly=1 - rel.max_key_null_ratio),
                            f"foreign key '{c}' ({rel.name}) is null in at most {rel.max_key_null_ratio:.0%} of rows"))
    for name, col in profile.get("columns", {}).items():
        dtype, stype = col["dtype"], col["semantic_type"]
        if dtype in ("str", "string", "object"):
            out.append((E.ExpectColumnValuesToBeOfType(column=name, type_="str"), f"'{name}' holds text values only"))
        elif dtype.startswith(("int", "Int", "uint", "float", "Float", "bool", "datetime64")):
            family = dtype.split("[")[0].rstrip("0123456789") or dtype
            out.append((E.ExpectColumnValuesToBeInTypeList(column=name, type_list=[dtype, family]),
                        f"'{name}' keeps its type {dtype}"))
        if stype == "email":
            out.append((E.ExpectColumnValuesToMatchRegex(column=name, regex=EMAIL_RE, mostly=0.95), f"'{name}' looks like email addresses"))
        elif stype == "url":
            out.append((E.ExpectColumnValuesToMatchRegex(column=name, regex=URL_RE, mostly=0.95), f"'{name}' looks like URLs"))
    return out


def validate_table(spec: DatasetSpec, table: str, df: pd.DataFrame, profile: dict) -> list[ExpectationOutcome]:
    """Run the table's suite on ``df``; one outcome per expectation, with example offending rows
    (personal-data columns masked unless the table's spec allows them)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    frame = df.reset_index(drop=True)
    # GX 1.24 does not know pandas 3's `str` dtype: hand it Python objects (values are unchanged).
    text_cols = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c]) and not pd.api.types.is_object_dtype(frame[c])]
    if text_cols:
        frame = frame.astype({c: object for c in text_cols})
        frame[text_cols] = frame[text_cols].where(frame[text_cols].notna(), None)
    pairs = build_expectations(spec, table, profile)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = ctx.data_sources.add_pandas(table).add_dataframe_asset(table).add_batch_definition_whole_dataframe(table)
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"{spec.name}.{table}", expectations=[e for e, _ in pairs]))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"{spec.name}.{table}", data=batch, suite=suite))
    result = vd.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    why = {e.id: w for e, w in zip(suite.expectations, (w for _, w in pairs))}
    masker = Masker.of(df, allowed_columns(spec.tables[table]))
    outcomes = []
    for res in result.results:
        r = res.result or {}
        idx = [i for i in (r.get("partial_unexpected_index_list") or []) if isinstance(i, (int,)) or str(i).isdigit()]
        cfg = res.expectation_config
        examples = df.reset_index(drop=True).iloc[[int(i) for i in idx[:MAX_EXAMPLES]]].to_dict("records") if idx else []
        examples = masker.records(examples)
        if not examples and r.get("partial_unexpected_list"):
            col = cfg.kwargs.get("column")
            examples = [masker.records([v])[0] if isinstance(v, dict) else {"value": masker.value(col, v) if col else v}
                        for v in r["partial_unexpected_list"][:MAX_EXAMPLES]]
        outcomes.append(ExpectationOutcome(
            expectation=cfg.type, column=cfg.kwargs.get("column") or ",".join(cfg.kwargs.get("column_list", []) or []),
            success=bool(res.success), unexpected_count=int(r.get("unexpected_count") or 0),
            unexpected_percent=float(r.get("unexpected_percent") or 0.0), why=why.get(cfg.id, cfg.type),
            examples=to_jsonable(examples)))
    return outcomes
