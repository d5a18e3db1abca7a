"""Domains, emails and URLs (spec §5.5 "Other Encoders", §1.2 "Semi-Structured Data").

Spec §5.5 "Domain Encoding (DomainEncoder): Domain names decompose into semantic and structural
components: subdomain (BERT → 64-dim), domain main (BERT → 128-dim), TLD (categorical embedding
over 21 TLDs + "other" → 32-dim), TLD type (generic/country/new → 16-dim), is-free-email flag
(8-dim), and optionally IP addresses from DNS lookup". This codec produces the inputs of those
components for every row (the dims live in :mod:`featrix_model.encoders.web`):

* ``dom_sub`` float32 (n, 384) - sentence embedding of the subdomain labels ("mail.eu" → "mail eu"),
  zeros when there is none; ``dom_main`` float32 (n, 384) - of the registrable name ("my-shop" →
  "my shop"). Multi-part public suffixes such as co.uk / com.au are recognised from a short list of
  second-level labels (``_SECOND_LEVEL``); no public-suffix download.
* ``dom_tld`` int64 (n,) - index into ``TOP_TLDS`` (21 fixed common TLDs) + 1, 0 = "other".
* ``dom_tld_type`` int64 (n,) - 0 generic (com, org, net, ...), 1 country (two letters), 2 new.
* ``dom_free`` int64 (n,) - 1 for free email providers (gmail, yahoo, hotmail, outlook, aol,
  icloud, proton, gmx, mail.ru, yandex, qq, 163, ...).
* No DNS lookups: the optional IP-address features need the network, and this library runs offline.
* ``missing`` bool (n,): NULL/blank, or a value whose host is not a domain name (no dot, numeric
  TLD: "localhost", IP addresses) - such rows get the encoder's learned replacement embedding.

Spec §1.2 "Emails: user@company.com → Decomposed into domain (company.com), TLD (.com), and
free-email flag (gmail, yahoo)": ``EmailCodec`` adds ``local`` float32 (n, 384), the embedding of
the local part with separators read as spaces ("john.smith+news" → "john smith news").

Spec §1.2 "URLs: https://example.com/path?query=value → Protocol, domain, path, and query params
all encoded separately"; §5.5 "protocol (categorical), domain (DomainEncoder), path (BERT),
endpoint (BERT on last path segment), and query params (BERT)": ``URLCodec`` adds ``protocol``
int64 (index into ``PROTOCOLS``; "none" when the URL has no scheme, e.g. "www.x.com/a"), ``path``,
``endpoint`` and ``query`` float32 (n, 384) (the query as its sorted distinct parameter names;
zeros when empty).

All parsing and embedding is per distinct value. The codecs need no fitted vocabulary (TLDs and
protocols are fixed lists), so ``fit`` only records statistics for ``report()``; the state is those
statistics and transform output does not depend on it.
"""

from __future__ import annotations

from abc import abstractmethod

import re
from collections import Counter
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd
import torch

from featrix_model.codecs.base import Codec
from featrix_model.codecs.string import column_texts, embed_optional, gather

TOP_TLDS = ("com", "org", "net", "edu", "gov", "io", "co", "uk", "de", "jp", "fr", "au", "ru", "ch", "it",
            "nl", "ca", "in", "info", "br", "cn")
GENERIC_TLDS = {"com", "org", "net", "edu", "gov", "mil", "int", "info", "biz", "name", "pro", "aero", "coop",
                "museum", "mobi", "jobs", "travel", "tel", "cat", "asia", "post", "arpa"}
TLD_TYPES = ("generic", "country", "new")
PROTOCOLS = ("other", "none", "http", "https", "ftp", "ftps", "sftp", "file", "mailto", "ws", "wss")
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or", "go", "gob", "gouv", "nic"}
FREE_BRANDS = {"gmail", "googlemail", "yahoo", "ymail", "hotmail", "outlook", "aol", "icloud", "protonmail",
               "gmx", "yandex"}  # free under any suffix (yahoo.co.uk, hotmail.fr, gmx.at, ...)
FREE_DOMAINS = {"gmail.com", "googlemail.com", "hotmail.com", "outlook.com", "live.com", "msn.com", "aol.com",
                "icloud.com", "me.com", "mac.com", "protonmail.com", "proton.me", "pm.me", "gmx.com", "gmx.de",
                "gmx.net", "yandex.com", "yandex.ru", "zoho.com", "tutanota.com", "fastmail.com", "mail.com",
                "mail.ru", "inbox.ru", "list.ru", "bk.ru", "qq.com", "163.com", "126.com", "sina.com",
                "naver.com", "daum.net", "rediffmail.com", "seznam.cz", "libero.it", "laposte.net", "web.de",
                "wp.pl", "o2.pl", "hey.com", "free.fr", "orange.fr", "ymail.com", "rocketmail.com"}
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?$")
_SEP = re.compile(r"[._\-+]+")
DOMAIN_KEYS = ("dom_sub", "dom_main", "dom_tld", "dom_tld_type", "dom_free")


def parse_domain(host: str) -> dict | None:
    """Split a host name into subdomain / main / suffix parts; None when it is not a domain."""
    host = host.strip().lower().rstrip(".")
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(x) for x in labels) or not labels[-1].isalpha():
        return None
    tld = labels[-1]
    n_suffix = 2 if len(labels) >= 3 and len(tld) == 2 and labels[-2] in _SECOND_LEVEL else 1
    main, sub = labels[-n_suffix - 1], labels[: -n_suffix - 1]
    registrable = ".".join(labels[-n_suffix - 1:])
    free = registrable in FREE_DOMAINS or main in FREE_BRANDS
    return {"sub": " ".join(sub), "main": main.replace("-", " "), "tld": tld, "registrable": registrable,
            "tld_idx": TOP_TLDS.index(tld) + 1 if tld in TOP_TLDS else 0,
            "tld_type": 0 if tld in GENERIC_TLDS else 1 if len(tld) == 2 else 2, "free": int(free)}


def _host_of(text: str) -> str:
    t = text.strip().lower()
    t = t.split("://", 1)[1] if "://" in t else t
    return re.split(r"[/?#:]", t, maxsplit=1)[0]


class _WebCodec(Codec):
    """Shared fit/transform: subclasses turn one distinct text into a dict of parts (or None)."""

    @abstractmethod
    def _parse(self, text: str) -> dict | None:
        """One distinct text → its parts, or None when it is not of this kind."""

    def _parsed(self, values: pd.Series) -> tuple[np.ndarray, list[dict | None]]:
        inv, texts = column_texts(values)
        parsed = [self._parse(t) for t in texts]
        ok = np.array([p is not None for p in parsed] + [False])
        inv = np.where(ok[np.where(inv < 0, len(texts), inv)], inv, -1)
        return inv, parsed

    def fit(self, values: pd.Series) -> "_WebCodec":
        inv, parsed = self._parsed(values)
        counts = np.bincount(inv[inv >= 0], minlength=len(parsed))
        tlds, doms = Counter(), Counter()
        free = 0
        for p, c in zip(parsed, counts.tolist()):
            if p is not None and c:
                tlds[p["domain"]["tld"]] += c
                doms[p["domain"]["registrable"]] += c
                free += p["domain"]["free"] * c
        n = int(counts.sum())
        self.stats_ = {"n_rows": int(len(inv)), "n_parsed": n, "free_share": round(free / n, 4) if n else 0.0,
                       "top_tlds": [[k, v] for k, v in sorted(tlds.items(), key=lambda kv: (-kv[1], kv[0]))[:10]],
                       "top_domains": [[k, v] for k, v in sorted(doms.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]}
        return self

    def transform(self, values: pd.Series) -> dict[str, torch.Tensor]:
        inv, parsed = self._parsed(values)
        good = [p if p is not None else {} for p in parsed]
        out = {"missing": torch.from_numpy(inv < 0)}
        for key, arr in self._arrays(good).items():
            out[key] = torch.from_numpy(gather(arr, inv, 0))
        return out

    def _arrays(self, parsed: list[dict]) -> dict[str, np.ndarray]:
        """Per-distinct arrays of the domain components (embeddings of distinct texts only)."""
        dom = [p.get("domain") or {} for p in parsed]
        return {"dom_sub": embed_optional([d.get("sub") for d in dom]),
                "dom_main": embed_optional([d.get("main") for d in dom]),
                "dom_tld": np.array([d.get("tld_idx", 0) for d in dom], dtype=np.int64),
                "dom_tld_type": np.array([d.get("tld_type", 2) for d in dom], dtype=np.int64),
                "dom_free": np.array([d.get("free", 0) for d in dom], dtype=np.int64)}

    def get_state(self) -> dict:
        return {"stats": self.stats_}

    def set_state(self, state: dict) -> "_WebCodec":
        self.stats_ = dict(state["stats"])
        return self

    def report(self) -> dict:
        s = self.stats_
        return {**s, "unparsed_share": round(1 - s["n_parsed"] / s["n_rows"], 4) if s["n_rows"] else 0.0,
                "dns_lookups": "none (offline)"}


class DomainCodec(_WebCodec):
    """Host names ("mail.example.co.uk"); a URL-like value contributes its host."""

    semantic_type = "domain"

    def _parse(self, text: str) -> dict | None:
        d = parse_domain(_host_of(text))
        return None if d is None else {"domain": d}


class EmailCodec(_WebCodec):
    """"local@domain": the domain components plus the local part (``local``)."""

    semantic_type = "email"

    def _parse(self, text: str) -> dict | None:
        if text.count("@") != 1:
            return None
        local, host = text.strip().split("@")
        d = parse_domain(host)
        if d is None or not local:
            return None
        return {"domain": d, "local": " ".join(_SEP.split(local.lower())).strip() or local}

    def _arrays(self, parsed: list[dict]) -> dict[str, np.ndarray]:
        return {**super()._arrays(parsed), "local": embed_optional([p.get("local") for p in parsed])}


class URLCodec(_WebCodec):
    """Protocol, domain components, path, endpoint (last path segment) and query parameter names."""

    semantic_type = "url"

    def _parse(self, text: str) -> dict | None:
        t = text.strip()
        scheme = "none"
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://", t):
            scheme = t.split("://", 1)[0].lower()
        else:
            t = "http://" + t
        try:
            u = urlsplit(t)
            host = u.hostname or ""
        except ValueError:
            return None
        d = parse_domain(host)
        if d is None:
            return None
        segments = [s for s in u.path.split("/") if s]
        keys = sorted({k for k, _ in parse_qsl(u.query, keep_blank_values=True) if k})
        return {"domain": d, "protocol": PROTOCOLS.index(scheme) if scheme in PROTOCOLS else 0,
                "path": "/".join(segments), "endpoint": segments[-1] if segments else "", "query": " ".join(keys)}

    def _arrays(self, parsed: list[dict]) -> dict[str, np.ndarray]:
        return {**super()._arrays(parsed),
                "protocol": np.array([p.get("protocol", 0) for p in parsed], dtype=np.int64),
                "path": embed_optional([p.get("path") for p in parsed]),
                "endpoint": embed_optional([p.get("endpoint") for p in parsed]),
                "query": embed_optional([p.get("query") for p in parsed])}


__all__ = ["DomainCodec", "EmailCodec", "URLCodec", "parse_domain", "TOP_TLDS", "PROTOCOLS", "DOMAIN_KEYS"]
