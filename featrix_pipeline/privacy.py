"""Personal data in what the pipeline shows: example rows, key values in check messages, profiles.

Checks prove a fault with example rows; those rows must not spread personal data into Dagster's
UI, the data-quality report and JSON artifacts. ``detect_personal_data`` finds the columns that
hold it, judged from their values (conservatively: a column is flagged only when most of a sample
has the shape):

* ``email`` — the email pattern (``featrix_model.types.EMAIL_RE``);
* ``phone`` — 7 to 15 digits in groups (``+1 (212) 555-0123``, ``020 7946 0958``): a ``+`` or
  parentheses, three groups or ten digits (so ZIP+4 ``12345-6789`` is not one), never a date or an
  IP address; bare digit strings count only when the name says phone / tel / mobile;
* ``person_name`` — one to four alphabetic words (``Jane O'Neil``) in a column whose name says it
  holds a person's name (``first_name``, ``customerName``, ``surname``); a bare ``name`` column
  needs two or three capitalised words and no organisation or place word (so airport and airline
  names stay visible).

``Masker`` masks those columns in records, keys and single values (``j***@***.com``,
``+* (***) ***-**23``, ``J. O.``) — except the columns the dataset allows to be shown
(``allowed``; ``ALL`` allows every column). ``allowed_columns`` reads that permission from a table
spec: ``show_personal_data: true`` or ``show_personal_data: [column, ...]``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from featrix_model.types import EMAIL_RE

EMAIL, PHONE, PERSON_NAME, CONTACT = "email", "phone", "person_name", "contact"  # contact: emails and phones
ALL = frozenset({"*"})  # allowed = ALL: every column may be shown unmasked
MIN_SHARE = 0.8  # share of sampled non-null values that must have the shape
BARE_NAME_SHARE = 0.9  # the same for a column called just "name"
HINTED_SHARE = 0.3  # the same when the column's name says what it holds (email, phone, ...): 'unknown's mixed in
_EMAIL_HINTS = {"email", "mail", "emails"}
SAMPLE = 500
_PHONE_RE = re.compile(r"^\+?\s?(?:\(\d{1,4}\)|\d{1,4})(?:[\s.\-]?(?:\(\d{1,4}\)|\d{1,5})){1,5}$")
_DATE_RE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
_IP_RE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_WORD_RE = re.compile(r"^[^\W\d_](?:[^\W\d_]|['’.\-])*$")
_PHONE_HINTS = {"phone", "phones", "tel", "telephone", "mobile", "cell", "fax", "msisdn"}
_NAME_WORDS = {"firstname", "lastname", "surname", "fullname", "givenname", "forename", "nickname", "maidenname",
               "middlename", "familyname"}
_PERSON_WORDS = {"first", "last", "given", "family", "middle", "full", "sur", "maiden", "nick", "customer", "contact",
                 "passenger", "patient", "employee", "person", "user", "owner", "driver", "pilot", "member", "holder",
                 "cardholder", "recipient", "sender", "buyer", "seller", "student", "author", "manager", "client",
                 "guest", "traveller", "traveler", "account", "emergency", "mother", "father", "spouse", "parent"}
_ORG_WORDS = {"airport", "airlines", "airline", "airways", "air", "field", "regional", "municipal", "international",
              "intl", "county", "city", "inc", "inc.", "co", "co.", "corp", "corp.", "corporation", "company", "ltd",
              "ltd.", "llc", "plc", "gmbh", "ag", "sa", "group", "bank", "university", "college", "school", "hospital",
              "center", "centre", "station", "park", "base", "port", "lines", "express", "services", "systems",
              "the", "of", "and", "&"}


def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name)).lower()) if p]


def _strings(values: pd.Series) -> list[str]:
    """A seeded sample of the non-blank string values (empty for non-text columns)."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype) \
            or pd.api.types.is_bool_dtype(values.dtype):
        return []
    nn = values.dropna()
    nn = nn.sample(n=SAMPLE, random_state=0) if len(nn) > SAMPLE else nn
    return [v.strip() for v in nn if isinstance(v, str) and v.strip()]


def _is_phone(s: str, bare_digits: bool) -> bool:
    digits = sum(c.isdigit() for c in s)
    if not 7 <= digits <= 15 or _DATE_RE.match(s) or _IP_RE.match(s):
        return False
    if s.isdigit():
        return bare_digits
    groups = len(re.findall(r"\d+", s))
    marked = s.startswith("+") or "(" in s
    return bool(_PHONE_RE.match(s)) and (marked or groups >= 3 or digits >= 10)


def _is_person_name(s: str, bare: bool) -> bool:
    words = s.split()
    if not 1 <= len(words) <= 4 or len(s) > 60 or not all(_WORD_RE.match(w) for w in words):
        return False
    if not bare:
        return True
    return 2 <= len(words) <= 3 and all(w[0].isupper() and w.lower().strip(".") not in _ORG_WORDS for w in words)


def personal_kind(values: pd.Series, name: str) -> str | None:
    """``email``, ``phone`` or ``person_name`` when the column holds that personal data, else None."""
    strs = _strings(values)
    if not strs:
        return None
    share = lambda test: sum(1 for s in strs if test(s)) / len(strs)  # noqa: E731
    parts = set(_parts(name))
    phone_hint = bool(_PHONE_HINTS & parts)
    emails, phones = share(EMAIL_RE.match), share(lambda s: _is_phone(s, phone_hint))
    if emails >= (HINTED_SHARE if _EMAIL_HINTS & parts else MIN_SHARE):
        return EMAIL if phones < HINTED_SHARE else CONTACT
    if phones >= (HINTED_SHARE if phone_hint else MIN_SHARE):
        return PHONE if emails == 0 else CONTACT
    if emails + phones >= MIN_SHARE and emails and phones:
        return CONTACT
    person = bool(_NAME_WORDS & parts) or ("name" in parts and bool(_PERSON_WORDS & parts))
    if person and share(lambda s: _is_person_name(s, bare=False)) >= MIN_SHARE:
        return PERSON_NAME
    role = parts == {"name"} or (parts and parts <= _PERSON_WORDS)  # "name", or "customer", "passenger", ...
    if role and share(lambda s: _is_person_name(s, bare=True)) >= BARE_NAME_SHARE:
        return PERSON_NAME
    return None


def detect_personal_data(df: pd.DataFrame, columns: Iterable[str] | None = None,
                         allowed: Collection[str] = ()) -> dict[str, str]:
    """{column: kind} of the columns of ``df`` (or of ``columns``) holding personal data, minus ``allowed``."""
    if allowed == ALL or "*" in allowed:
        return {}
    cols = [c for c in (df.columns if columns is None else columns) if c in df.columns and c not in allowed]
    found = {str(c): personal_kind(df[c], str(c)) for c in cols}
    return {c: k for c, k in found.items() if k}


def mask_value(v, kind: str):
    """One value masked by kind; NULLs and non-strings other than numbers are returned as they are."""
    if v is None or (isinstance(v, float) and v != v):
        return v
    s = str(v)
    if kind == CONTACT:  # each value by its own shape
        kind = EMAIL if EMAIL_RE.match(s.strip()) else PHONE
    if kind == EMAIL:
        local, _, domain = s.partition("@")
        tld = domain.rsplit(".", 1)[-1] if "." in domain else ""
        return f"{local[:1]}***@***.{tld}" if tld else f"{local[:1]}***"
    if kind == PHONE:
        n_digits = sum(c.isdigit() for c in s)
        seen, out = 0, []
        for c in s:
            if c.isdigit():
                seen += 1
                out.append(c if seen > n_digits - 2 else "*")
            else:
                out.append(c)
        return "".join(out)
    if kind == PERSON_NAME:
        return " ".join(f"{w[:1]}." for w in s.split()) or s
    return "***"


@dataclass(frozen=True)
class Masker:
    """Masks the personal-data columns ``kinds`` ({column: kind}) wherever their values are shown."""

    kinds: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, df: pd.DataFrame, allowed: Collection[str] = (), columns: Iterable[str] | None = None) -> "Masker":
        return cls(detect_personal_data(df, columns, allowed))

    def value(self, column: str, v):
        kind = self.kinds.get(column)
        return v if kind is None else mask_value(v, kind)

    def key(self, columns: list[str], values: tuple) -> tuple:
        """A key (values of ``columns``, in order) with its personal-data parts masked."""
        return tuple(self.value(c, v) for c, v in zip(columns, values))

    def records(self, records: list[dict], prefix: str = "") -> list[dict]:
        """Records (dicts keyed by column, or by ``prefix`` + column) with personal data masked."""
        if not self.kinds:
            return records
        return [{k: self.value(k[len(prefix):] if prefix and k.startswith(prefix) else k, v) for k, v in r.items()}
                for r in records]

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """A copy of a (small) frame with the personal-data columns masked."""
        hit = [c for c in df.columns if c in self.kinds]
        if not hit:
            return df
        out = df.copy()
        for c in hit:
            out[c] = pd.Series([self.value(c, v) for v in out[c]], index=out.index, dtype=object)
        return out

    def metadata(self) -> dict:
        """What a check's metadata says about masking (empty when nothing was masked)."""
        if not self.kinds:
            return {}
        return {"masked_personal_data": dict(self.kinds),
                "masked_why": "personal data is masked in examples; allow a column with the table's show_personal_data"}


def allowed_columns(table_spec) -> frozenset[str]:
    """The columns a table spec allows to be shown unmasked: ``show_personal_data: true`` → ``ALL``,
    ``show_personal_data: [a, b]`` → those; absent → none."""
    allow = getattr(table_spec, "show_personal_data", None)
    if allow is True:
        return ALL
    if not allow:
        return frozenset()
    return frozenset([allow] if isinstance(allow, str) else allow)
