"""Which columns an embedding space uses and how each is encoded (spec §1.4, §5, §16).

``plan_columns`` detects each column's type from its values, drops useless columns with a reason,
fits one codec per kept column, and remembers which encoder class each type gets. The
``{semantic type: (codec class, encoder class)}`` mapping is passed in (dependency injection, no
global registry); ``default_column_types()`` is the built-in one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from featrix_model import inputs
from featrix_model.codecs.base import Codec, CodecContext
from featrix_model.types import INTERNAL_PREFIX, ColumnProfile, profile_frame
from featrix_model.usefulness import UselessVerdict, find_useless_columns

log = logging.getLogger("featrix_model")


def default_column_types() -> dict[str, tuple[type, type]]:
    from featrix_model.codecs.json_codec import JsonCodec
    from featrix_model.codecs.scalar import ScalarCodec
    from featrix_model.codecs.set import SetCodec
    from featrix_model.codecs.string import StringCodec
    from featrix_model.codecs.timestamp import TimestampCodec
    from featrix_model.codecs.vector import VectorCodec
    from featrix_model.codecs.web import DomainCodec, EmailCodec, URLCodec
    from featrix_model.encoders.json_encoder import JsonEncoder
    from featrix_model.encoders.scalar import AdaptiveScalarEncoder
    from featrix_model.encoders.set import SetEncoder
    from featrix_model.encoders.string import StringEncoder
    from featrix_model.encoders.timestamp import TimestampEncoder
    from featrix_model.encoders.vector import VectorEncoder
    from featrix_model.encoders.web import DomainEncoder, EmailEncoder, URLEncoder

    return {
        "scalar": (ScalarCodec, AdaptiveScalarEncoder),
        "set": (SetCodec, SetEncoder),
        "boolean": (SetCodec, SetEncoder),
        "string": (StringCodec, StringEncoder),
        "identifier": (StringCodec, StringEncoder),
        "json": (JsonCodec, JsonEncoder),
        "timestamp": (TimestampCodec, TimestampEncoder),
        "email": (EmailCodec, EmailEncoder),
        "domain": (DomainCodec, DomainEncoder),
        "url": (URLCodec, URLEncoder),
        "vector": (VectorCodec, VectorEncoder),
    }


@dataclass
class ColumnPlan:
    columns: list[str]
    all_columns: list[str]
    info: dict[str, dict]
    codecs: dict[str, object]
    encoder_classes: dict[str, type]
    decisions: list[str] = field(default_factory=list)

    def add_column(self, name: str, codec: Codec, encoder_class: type, semantic_type: str, type_reason: str,
                   decision: str) -> None:
        """Append a column that is not detected from the data but built by the caller (e.g. a relational
        space's pooled children), fitted codec included."""
        if name in self.columns:
            raise ValueError(f"column {name!r} is already in the plan")
        self.columns.append(name)
        self.all_columns.append(name)
        self.codecs[name] = codec
        self.encoder_classes[name] = encoder_class
        self.info[name] = {"semantic_type": semantic_type, "type_reason": type_reason, "excluded": False, "reason": None}
        self.decisions.append(decision)

    def transform(self, df: pd.DataFrame) -> dict:
        return {c: self.codecs[c].transform(df[c]) for c in self.columns}

    def build_encoders(self, d_model: int) -> list:
        return [self.encoder_classes[c](d_model=d_model, **self.codecs[c].encoder_kwargs()) for c in self.columns]

    def scalar_indices(self) -> list[int]:
        return [i for i, c in enumerate(self.columns) if self.info[c]["semantic_type"] == "scalar"]

    def codecs_config(self) -> dict:
        return {c: self.codecs[c].to_config() for c in self.columns}

    def to_config(self) -> dict:
        return {"columns": self.columns, "all_columns": self.all_columns, "info": self.info,
                "encoders": {c: self.encoder_classes[c].__name__ for c in self.columns}, "decisions": self.decisions}

    @classmethod
    def from_config(cls, config: dict, codecs_config: dict, column_types: dict | None = None,
                    context: CodecContext | None = None) -> "ColumnPlan":
        types = column_types or default_column_types()
        by_name = {}
        for codec_cls, enc_cls in types.values():
            by_name[codec_cls.__name__] = codec_cls
            by_name[enc_cls.__name__] = enc_cls
        codecs, encoders = {}, {}
        for c in config["columns"]:
            cc = codecs_config[c]
            if cc["class"] not in by_name or config["encoders"][c] not in by_name:
                raise ValueError(f"column {c!r} was saved with {cc['class']}/{config['encoders'][c]}, which this "
                                 "installation does not provide: pass column_types= with those classes.")
            codecs[c] = by_name[cc["class"]].from_config(cc, context)
            encoders[c] = by_name[config["encoders"][c]]
        return cls(config["columns"], config["all_columns"], config["info"], codecs, encoders, config.get("decisions", []))


Analysis = tuple[ColumnProfile, UselessVerdict]


def plan_columns(df: pd.DataFrame, *, exclude=(), keep=(), column_types: dict | None = None,
                 context: CodecContext | None = None, analysis: dict[str, Analysis] | None = None,
                 table: str | None = None, analysis_rows: int | None = None) -> ColumnPlan:
    """Profile, filter (spec §16) and fit codecs; every exclusion carries a plain-words reason.

    ``analysis``: {column: (profile, usefulness verdict)} already computed for these values (e.g. by
    a pipeline's profiling step); those columns are not profiled again. ``analysis_rows``: the rows
    that analysis was made on when ``df`` is a chosen part of them (default: ``df``'s own count). ``context`` is handed to
    every codec (the seed; the space class for codecs that train one). Tables and values no codec
    can read are refused first, naming ``table`` (when given), the column and what to do
    (:mod:`featrix_model.inputs`); a table under ``inputs.SMALL_TABLE_ROWS`` rows trains with a warning."""
    inputs.check_table(df, table)
    types = column_types or default_column_types()
    context = context or CodecContext()
    context = CodecContext(context.seed, context.space_class, context.column_types or types)
    unknown = [c for c in (*exclude, *keep) if c not in df.columns]
    if unknown:
        raise KeyError(f"exclude/keep name columns that are not in the data: {unknown}. Columns: {list(df.columns)}")
    visible = [c for c in df.columns if not str(c).startswith(INTERNAL_PREFIX)]
    profiles, verdicts = _analyse(df[visible], analysis or {}, analysis_rows)
    info, decisions, used, codecs, encoders = {}, [], [], {}, {}
    small = inputs.small_table_warning(len(df), table)
    if small:
        inputs.warn(small, decisions)
    for c in visible:
        p, v = profiles[c], verdicts[c]
        stype = p.semantic_type.value
        excluded, reason = v.exclude, v.reason
        if c in exclude:
            excluded, reason = True, f"Column '{c}' excluded by the caller."
        elif c in keep and excluded:
            excluded, reason = False, f"{v.reason} Kept anyway: the caller asked to keep it."
        if not excluded and stype not in types:
            excluded, reason = True, f"Column '{c}' has type {stype}, which no encoder handles; excluded."
        info[c] = {"semantic_type": stype, "type_reason": p.type_reason, "excluded": excluded, "reason": reason}
        if excluded:
            decisions.append(f"[WARN] {reason}")
            continue
        inputs.check_values(df[c], c, stype, table)
        codec_cls, enc_cls = types[stype]
        codecs[c] = codec_cls.build(c, stype, context).fit(df[c])
        encoders[c] = enc_cls
        used.append(c)
        decisions.append(f"column '{c}': {stype} ({p.type_reason}) → {codec_cls.__name__} + {enc_cls.__name__}")
    for c in df.columns:
        if str(c).startswith(INTERNAL_PREFIX):
            info[c] = {"semantic_type": "internal", "type_reason": "Featrix metadata", "excluded": True,
                       "reason": f"Column '{c}' is internal Featrix metadata: stripped."}
    return ColumnPlan(used, visible, info, codecs, encoders, decisions)


def _analyse(df: pd.DataFrame, known: dict[str, Analysis], rows: int | None = None) -> tuple[dict, dict]:
    """Profiles and verdicts of every column: the known ones as given, the rest computed here."""
    rows = len(df) if rows is None else rows
    stale = [c for c in df.columns if c in known and known[c][0].n_rows != rows]
    if stale:
        raise ValueError(f"the profile handed in for column(s) {stale} was made on {known[stale[0]][0].n_rows:,} rows, "
                         f"but the frame has {rows:,}: profile these rows again (leave analysis= out).")
    rest = [c for c in df.columns if c not in known]
    profiles = {c: known[c][0] for c in df.columns if c in known}
    verdicts = {c: known[c][1] for c in df.columns if c in known}
    if rest:
        new = profile_frame(df[rest])
        profiles.update(new)
        verdicts.update(find_useless_columns(df[rest], new))
    return {c: profiles[c] for c in df.columns}, {c: verdicts[c] for c in df.columns}
