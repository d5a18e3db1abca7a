"""The result of validating one join: ``CheckOutcome`` per check and the ``JoinReport`` around them,
as a dict (``to_dict``, for JSON artifacts) and as markdown (``markdown``, for the data-quality report)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from featrix_model.jsonable import to_jsonable

ERROR, WARN = "ERROR", "WARN"
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
        """True when no check blocks training (WARN failures do not)."""
        return not self.blocking

    def to_dict(self) -> dict:
        """The whole report as plain JSON types, plus ``ok``."""
        d = to_jsonable(asdict(self))
        d["ok"] = self.ok
        return d

    def markdown(self) -> str:
        """The report as a markdown section: summary table, checks, then the details behind them."""
        return "\n".join(self._md_summary() + self._md_details())

    def _md_summary(self) -> list[str]:
        """Heading, condition, note, the table of counts and the list of checks."""
        md = [f"### Join `{self.relationship}`: {self.child} → {self.parent}", "",
              f"`{self.condition}` — declared **{self.declared_cardinality}**, observed **{self.observed_cardinality}**", ""]
        if self.note:
            md += [f"> {self.note}", ""]
        md += md_table(["metric", "value"], [
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
        return md

    def _md_details(self) -> list[str]:
        """Key-type explanations, orphan and duplicate examples, distribution shift and time ranges."""
        md: list[str] = []
        for kt in self.key_types:
            if not kt["compatible"] or "coverage_after_normalize" in kt:
                md += ["", f"**Key types** `{kt['child_column']}` ↔ `{kt['parent_column']}`: {kt['explanation']}"]
        if self.orphan_examples:
            md += ["", f"**Orphan examples** ({self.child} rows whose key finds no {self.parent} row)", ""]
            md += md_records(self.orphan_examples)
        if self.duplicate_examples:
            md += ["", f"**Duplicated {self.parent} rows**", ""] + md_records(self.duplicate_examples)
        md += self._md_shift()
        if self.temporal and "child_min" in self.temporal:
            t = self.temporal
            md += ["", f"**Time ranges**: {self.child}.{t['child_column']} {t['child_min']} – {t['child_max']}; "
                   f"{self.parent}.{t['parent_column']} {t['parent_min']} – {t['parent_max']}; "
                   f"{t['share_outside_parent_range']:.1%} of child rows outside the parent range."]
        return md

    def _md_shift(self) -> list[str]:
        """The five most shifted child columns and each target's class balance before → after the join."""
        md: list[str] = []
        top = self.distribution_shift.get("top", [])[:5]
        if top:
            md += ["", "**Distribution shift** (KL divergence of the joined rows from all child rows, top 5)", ""]
            md += md_table(["column", "KL (bits)", "most shifted value", "all rows", "joined rows"],
                           [[t["column"], f"{t['kl_bits']:.4f}", t["most_shifted"], f"{t['share_all']:.1%}",
                             f"{t['share_joined']:.1%}"] for t in top])
        for name, t in self.distribution_shift.get("targets", {}).items():
            if "before" in t:
                md += ["", f"Target `{name}` ({t['table']}) balance before → after join (KL {t['kl_bits']:.4f} bits): "
                       + ", ".join(f"{k} {v:.1%} → {t['after'].get(k, 0):.1%}" for k, v in list(t["before"].items())[:8])]
        return md


def md_table(header: list[str], rows: list[list]) -> list[str]:
    """Markdown table lines; pipes and newlines inside cells are escaped so the table stays intact."""
    esc = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(esc(v) for v in r) + " |" for r in rows]


def md_records(records: list[dict]) -> list[str]:
    """Example rows (dicts, possibly with different keys) as one markdown table; floats to 6 digits."""
    cols = list(dict.fromkeys(k for r in records for k in r))
    fmt = lambda v: "" if v is None else f"{v:.6g}" if isinstance(v, float) else v  # noqa: E731
    return md_table(cols, [[fmt(r.get(c)) for c in cols] for r in records])
