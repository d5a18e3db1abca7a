"""Hybrid column groups (spec "Hybrid Column Detection", RELATIONSHIP strategy): columns that only
mean something together get one shared, learned group embedding added to their column tokens.

Why: a latitude alone is half a place and a city alone is ambiguous (Portland, OR vs ME); the
joint transformer learns faster when the tokens that form one entity carry a common marker, in
the way a position embedding marks which column a token is.

Rules (names propose, values confirm; a column belongs to at most one group; no 1-column groups):

- Names are split into lowercase tokens at ``_ . -`` and spaces and at camelCase humps
  (``pickupLat`` → ``pickup lat``). A role word must be a whole token, so ``latency_ms`` and
  ``flat_fee`` are not latitudes; the other tokens are the column's *stem* (``origin.lat`` → ``origin``).
- geo: a latitude (``lat``, ``latitude`` as first or last token) and a longitude (``lon``, ``lng``,
  ``long``, ``longitude``) with the same stem; when the frame has exactly one of each they also
  pair if one stem is empty (``latitude`` + ``lng_deg``), never as two halves (``start_lat`` +
  ``end_lon``). Both must be confirmed by values: numeric (or ≥ 90 % numeric text), ≥ 90 % of
  non-null values within [-90, 90] (latitude) or [-180, 180] (longitude), and not constant. So
  ``long_description`` (text) or a 0–1000 ``lat`` never make a group.
- address: ≥ 2 different roles among street (``street``, ``address``, ``addr``, ``address_line1``…),
  city (``city``, ``town``), state (``state``, ``province``, ``region``, ``county``), zip (``zip``,
  ``zipcode``, ``postcode``, ``postal_code``…) and country, as the last tokens of the name, under
  the same prefix (``billing_city``, ``billing_state``; an ``address`` token before another role
  is dropped, so ``shipping_address_city`` joins ``shipping_address``). Values: text for street,
  city, state and country (≥ 90 % of sampled values contain a letter; street not e-mails); zip ≥ 90 %
  of 3–10 letters/digits (``10001``, ``SW1A 1AA``, ``12345-6789``), numeric or text. ``email_address``
  or ``ip_address`` is never a street.
- ``semantic_types`` (column → type from ``featrix_model.types``), when given, vetoes columns whose
  detected type cannot be that role (a timestamp is never a latitude, a number never a city).
- Output is deterministic: members in ``columns`` order, groups ordered by their first member.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch
from torch import nn

KINDS = ("geo", "address")
MIN_SHARE = 0.9
SAMPLE = 2000
_LAT, _LON = {"lat", "latitude"}, {"lon", "lng", "long", "longitude"}
_ADDRESS_ROLES = {  # regex over the name's trailing tokens joined by "_"
    "street": r"(?:street(?:_?address)?|address|addr)(?:_?line)?(?:_?\d+)?|street_?line(?:_?\d+)?",
    "city": r"city(?:_?name)?|town",
    "state": r"(?:state|province|region|county)(?:_?(?:code|name))?",
    "zip": r"zip(?:_?code)?(?:_?\d)?|post(?:al)?_?code|postal",
    "country": r"country(?:_?(?:code|name))?",
}
_NOT_POSTAL = {"email", "e", "ip", "ipv4", "ipv6", "mac", "web", "url", "wallet", "host",
               "server", "remote", "hw", "ether", "contract", "bitcoin", "eth", "btc"}
_NOT_NUMERIC = {"string", "timestamp", "boolean", "email", "domain", "url", "json", "vector", "empty"}
_NOT_TEXT = {"scalar", "timestamp", "boolean", "email", "domain", "url", "json", "vector", "empty"}
_NOT_ZIP = _NOT_TEXT - {"scalar"}
_ZIP_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 -]{1,10})[A-Za-z0-9]$")


def tokens(name: str) -> list[str]:
    """``"pickupLat"`` → ``["pickup", "lat"]``; ``"origin.lat"`` → ``["origin", "lat"]``."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name)))
    return [t for t in re.split(r"[_.\-\s]+", s.lower()) if t]


def _share(mask: pd.Series | np.ndarray) -> float:
    return float(np.mean(mask)) if len(mask) else 0.0


def _sample(s: pd.Series) -> pd.Series:
    nn_ = s.dropna()
    if len(nn_) <= SAMPLE:
        return nn_
    return nn_.iloc[np.linspace(0, len(nn_) - 1, SAMPLE).astype(int)]


def _numeric_in(s: pd.Series, bound: float) -> tuple[bool, str]:
    if pd.api.types.is_bool_dtype(s.dtype):
        return False, "boolean"
    nn_ = s.dropna()
    num = pd.to_numeric(nn_, errors="coerce") if not pd.api.types.is_numeric_dtype(nn_.dtype) else nn_
    num = num.astype("float64")
    if len(nn_) < 2 or _share(num.notna()) < MIN_SHARE:
        return False, "not numeric"
    num = num.dropna()
    share = _share(num.abs() <= bound)
    if share < MIN_SHARE:
        return False, f"only {share:.0%} within [-{bound:g}, {bound:g}]"
    if num.nunique() < 2:
        return False, "constant"
    return True, f"{share:.0%} of its values lie in [-{bound:g}, {bound:g}]"


def _text_like(s: pd.Series, role: str) -> tuple[bool, str]:
    v = _sample(s)
    if role == "zip":
        if pd.api.types.is_float_dtype(v.dtype) and bool((v == np.round(v)).all()):
            v = v.astype("int64")
        share = _share(v.astype(str).str.strip().map(lambda x: bool(_ZIP_RE.match(x))
                                                      and 3 <= sum(c.isalnum() for c in x) <= 10))
        return share >= MIN_SHARE, f"{share:.0%} look like postal codes"
    if pd.api.types.is_numeric_dtype(v.dtype) or not len(v):
        return False, "not text"
    text = v.map(lambda x: isinstance(x, str) and any(c.isalpha() for c in x))
    if role == "street" and _share(v.map(lambda x: isinstance(x, str) and "@" in x)) > 1 - MIN_SHARE:
        return False, "looks like e-mail addresses"
    return _share(text) >= MIN_SHARE, "text"


def _type_of(semantic_types: dict | None, col: str) -> str | None:
    t = (semantic_types or {}).get(col)
    return None if t is None else str(getattr(t, "value", t))


def _geo_role(toks: list[str]) -> tuple[str, tuple[str, ...]] | None:
    lat, lon = [t in _LAT for t in toks], [t in _LON for t in toks]
    if any(lat) and any(lon):  # "lat_long": one combined column, not half of a pair
        return None
    for i in (len(toks) - 1, 0):
        if toks and (lat[i] or lon[i]):
            return ("lat" if lat[i] else "lon"), tuple(toks[:i] + toks[i + 1:])
    return None


def _geo_groups(df: pd.DataFrame, columns: list[str], types: dict | None) -> list[dict]:
    cands: dict[str, list[tuple[str, tuple, str]]] = {"lat": [], "lon": []}
    for c in columns:
        r = _geo_role(tokens(c))
        if r is None or _type_of(types, c) in _NOT_NUMERIC:
            continue
        ok, why = _numeric_in(df[c], 90.0 if r[0] == "lat" else 180.0)
        if ok:
            cands[r[0]].append((c, r[1], why))
    lats, lons = cands["lat"], cands["lon"]
    if len(lats) == 1 and len(lons) == 1 and (not lats[0][1] or not lons[0][1] or lats[0][1] == lons[0][1]):
        pairs = [(lats[0], lons[0])]  # the only pair; "start_lat" + "end_lon" are two halves, not one
    else:
        by_stem: dict[tuple, tuple] = {}
        for lo in lons:
            by_stem.setdefault(lo[1], lo)  # first longitude per stem
        pairs = [(la, by_stem.pop(la[1])) for la in lats if la[1] in by_stem]
    out = []
    for (la, la_stem, la_why), (lo, lo_stem, lo_why) in pairs:
        shared = f"they share the name part {'.'.join(la_stem)!r}" if la_stem and la_stem == lo_stem else \
            "they are the only latitude/longitude pair"
        out.append({"kind": "geo", "columns": [la, lo],
                    "reason": f"{la!r} is named like a latitude and {la_why}; {lo!r} is named like a "
                              f"longitude and {lo_why}; {shared}"})
    return out


def _address_role(toks: list[str]) -> tuple[str, tuple[str, ...]] | None:
    for k in range(min(3, len(toks)), 0, -1):
        tail = "_".join(toks[-k:])
        for role, rx in _ADDRESS_ROLES.items():
            if re.fullmatch(rx, tail):
                prefix = toks[:-k]
                if role == "street" and prefix and prefix[-1] in _NOT_POSTAL:
                    return None
                if role != "street" and prefix and prefix[-1] in ("address", "addr"):
                    prefix = prefix[:-1]
                return role, tuple(prefix)
    return None


def _address_groups(df: pd.DataFrame, columns: list[str], types: dict | None) -> list[dict]:
    by_prefix: dict[tuple, list[tuple[str, str, str]]] = {}
    for c in columns:
        r = _address_role(tokens(c))
        if r is None or _type_of(types, c) in (_NOT_ZIP if r[0] == "zip" else _NOT_TEXT):
            continue
        ok, why = _text_like(df[c], r[0])
        if ok:
            by_prefix.setdefault(r[1], []).append((c, r[0], why))
    out = []
    for prefix, members in by_prefix.items():
        if len({role for _, role, _ in members}) < 2:
            continue
        parts = ", ".join(f"{c!r} ({role}: {why})" for c, role, why in members)
        where = f"share the prefix {'_'.join(prefix)!r}" if prefix else "have no prefix, as one address"
        out.append({"kind": "address", "columns": [c for c, _, _ in members],
                    "reason": f"address parts {parts} {where}"})
    return out


def detect_groups(df: pd.DataFrame, columns: list[str],
                  semantic_types: dict[str, str] | None = None) -> list[dict]:
    """Hybrid groups among ``columns`` of ``df``: ``[{"kind", "columns", "reason"}]`` (rules above)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"detect_groups: columns not in the frame: {missing}")
    columns = list(dict.fromkeys(columns))
    groups = _geo_groups(df, columns, semantic_types)
    used = {c for g in groups for c in g["columns"]}  # the vocabularies are disjoint; the rule holds if they grow
    groups += _address_groups(df, [c for c in columns if c not in used], semantic_types)
    order = {c: i for i, c in enumerate(columns)}
    for g in groups:
        g["columns"].sort(key=order.__getitem__)
    return sorted(groups, key=lambda g: order[g["columns"][0]])


def groups_config(groups: list[dict]) -> list[dict]:
    """Plain JSON-ready copy of detected groups (for ``config.json``)."""
    return [{"kind": str(g["kind"]), "columns": [str(c) for c in g["columns"]], "reason": str(g.get("reason", ""))}
            for g in groups]


def groups_from_config(config: list[dict], columns: list[str] | None = None) -> list[dict]:
    """Groups back from ``groups_config`` output, checked: known kinds, ≥ 2 members, no column twice,
    and (given ``columns``) every member still a column."""
    groups, seen = groups_config(config), set()
    for g in groups:
        if g["kind"] not in KINDS or len(g["columns"]) < 2:
            raise ValueError(f"bad column group in config: {g}")
        if seen & set(g["columns"]) or (columns is not None and set(g["columns"]) - set(columns)):
            raise ValueError(f"column group {g['columns']} repeats a column or names one not in {columns}")
        seen |= set(g["columns"])
    return groups


def group_indices(groups: list[dict], columns: list[str]) -> list[list[int]]:
    """Member names → column indices (for ``GroupEmbedding``)."""
    pos = {c: i for i, c in enumerate(columns)}
    return [[pos[c] for c in g["columns"]] for g in groups]


class GroupEmbedding(nn.Module):
    """One learned vector per group, laid out as an (n_cols, d_model) table to add to column tokens
    like a position embedding: a group's vector on its members' rows, zeros elsewhere. Initialised
    as ``randn * 0.02`` (the joint encoder's position scale) from a private generator, so the
    result is fixed by ``seed`` and adding groups does not shift the global RNG for other modules."""

    def __init__(self, n_cols: int, d_model: int, groups: list[list[int]], seed: int = 0):
        super().__init__()
        flat = [int(i) for g in groups for i in g]
        if any(not 0 <= i < n_cols for i in flat) or len(flat) != len(set(flat)):
            raise ValueError(f"groups {groups} must name distinct column indices in [0, {n_cols})")
        self.n_cols, self.d_model, self.groups = n_cols, d_model, [[int(i) for i in g] for g in groups]
        assign = torch.zeros(n_cols, len(groups))
        for k, g in enumerate(self.groups):
            assign[g, k] = 1.0
        self.register_buffer("assign", assign, persistent=False)
        if groups:
            gen = torch.Generator().manual_seed(seed)
            self.vectors = nn.Parameter(torch.randn(len(groups), d_model, generator=gen) * 0.02)

    def forward(self) -> torch.Tensor:
        if not self.groups:
            return self.assign.new_zeros(self.n_cols, self.d_model)
        return self.assign.to(self.vectors.dtype) @ self.vectors

    def extra_repr(self) -> str:
        return f"n_cols={self.n_cols}, d_model={self.d_model}, groups={self.groups}"
