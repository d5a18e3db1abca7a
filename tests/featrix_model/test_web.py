"""Email / domain / URL codecs and encoders (spec §5.5, §1.2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from featrix_model import sentence
from featrix_model.codecs.web import PROTOCOLS, TOP_TLDS, DomainCodec, EmailCodec, URLCodec, parse_domain
from featrix_model.encoders.web import DomainEncoder, EmailEncoder, URLEncoder

torch.set_num_threads(1)
D = 64
EMAILS = pd.Series(["john.smith@gmail.com", "ceo@acme-corp.io", "ops@mail.example.co.uk", "x@yahoo.co.jp",
                    "not an email", None, "", "ana@hotmail.fr", "bob@acme-corp.io"])
URLS = pd.Series(["https://shop.example.com/products/shoes/item-123?size=9&color=red", "www.google.com",
                  "ftp://files.kernel.org/pub/linux.tar.gz", "http://localhost/x", None, "https://example.com/"])
DOMAINS = pd.Series(["mail.google.com", "example.org", "bbc.co.uk", "https://x.de/a", "nodot", "shop.my-store.xyz"])


def _emb(text: str) -> np.ndarray:
    return sentence.embed([text])[0]


def test_parse_domain():
    d = parse_domain("Mail.EU.Example.co.uk")
    assert (d["sub"], d["main"], d["tld"], d["registrable"]) == ("mail eu", "example", "uk", "example.co.uk")
    assert d["tld_idx"] == TOP_TLDS.index("uk") + 1 and d["tld_type"] == 1 and d["free"] == 0
    assert parse_domain("shop.my-store.xyz")["tld_idx"] == 0 and parse_domain("a.xyz")["tld_type"] == 2
    assert parse_domain("example.com")["tld_type"] == 0 and parse_domain("example.com")["sub"] == ""
    assert parse_domain("localhost") is None and parse_domain("foo.123") is None
    assert parse_domain("yahoo.co.uk")["free"] == 1 and parse_domain("mail.ru")["free"] == 1


def test_email_decomposition():
    c = EmailCodec("email").fit(EMAILS)
    b = c.transform(EMAILS)
    n = len(EMAILS)
    assert b["missing"].tolist() == [False, False, False, False, True, True, True, False, False]
    assert b["dom_free"].tolist() == [1, 0, 0, 1, 0, 0, 0, 1, 0]
    assert b["dom_tld"][0] == TOP_TLDS.index("com") + 1 and b["dom_tld"][1] == TOP_TLDS.index("io") + 1
    assert b["dom_tld_type"][:4].tolist() == [0, 1, 1, 1]
    for k in ("dom_sub", "dom_main", "local"):
        assert b[k].shape == (n, 384) and b[k].dtype == torch.float32
    assert np.allclose(b["local"][0].numpy(), _emb("john smith"))
    assert np.allclose(b["dom_main"][1].numpy(), _emb("acme corp"))
    assert np.allclose(b["dom_sub"][2].numpy(), _emb("mail")) and not b["dom_sub"][0].any()
    rep = c.report()
    assert rep["free_share"] == pytest.approx(3 / 6, abs=1e-4) and rep["top_domains"][0] == ["acme-corp.io", 2]
    enc = EmailEncoder(D)
    full, short = enc(b)
    assert full.shape == (n, D) and short.shape == (n, 3)
    assert torch.allclose(short[~b["missing"]].norm(dim=-1), torch.ones(6), atol=1e-4)
    assert torch.equal(full[5], enc.missing_embedding.detach())


def test_url_parts():
    c = URLCodec("url").fit(URLS)
    b = c.transform(URLS)
    assert b["missing"].tolist() == [False, False, False, True, True, False]
    assert [PROTOCOLS[i] for i in b["protocol"].tolist()] == ["https", "none", "ftp", "other", "other", "https"]
    assert np.allclose(b["path"][0].numpy(), _emb("products/shoes/item-123"))
    assert np.allclose(b["endpoint"][0].numpy(), _emb("item-123"))
    assert np.allclose(b["query"][0].numpy(), _emb("color size"))  # sorted keys
    assert np.allclose(b["dom_sub"][0].numpy(), _emb("shop")) and np.allclose(b["dom_main"][0].numpy(), _emb("example"))
    assert np.allclose(b["endpoint"][2].numpy(), _emb("linux.tar.gz"))
    assert not b["path"][1].any() and not b["query"][5].any() and not b["endpoint"][5].any()
    enc = URLEncoder(D)
    full, short = enc(b)
    assert full.shape == (len(URLS), D) and torch.equal(full[3], enc.missing_embedding.detach())
    full.sum().backward()
    assert enc.endpoint.weight.grad is not None and enc.components.tld.weight.grad is not None


def test_domain_codec_and_encoder():
    c = DomainCodec("site").fit(DOMAINS)
    b = c.transform(DOMAINS)
    assert b["missing"].tolist() == [False, False, False, False, True, False]
    assert b["dom_tld"][5] == 0  # "xyz" is not one of the 21 → other
    enc = DomainEncoder(D)
    full, short = enc(b)
    assert full.shape == (6, D) and short.shape == (6, 3)
    assert torch.equal(full[4], enc.missing_embedding.detach())
    comp = enc.components(b)
    assert comp.shape == (6, 64 + 128 + 32 + 16 + 8)


@pytest.mark.parametrize("cls,values", [(EmailCodec, EMAILS), (URLCodec, URLS), (DomainCodec, DOMAINS)])
def test_state_round_trip_gives_identical_bytes(cls, values):
    c = cls("w").fit(values)
    again = cls.from_config(json.loads(json.dumps(c.to_config())))
    assert again.semantic_type == c.semantic_type and again.report() == c.report()
    a, b = c.transform(values), again.transform(values)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].numpy().tobytes() == b[k].numpy().tobytes(), k


def test_each_distinct_part_embedded_once(embed_calls):
    calls = embed_calls
    values = pd.Series(["a@gmail.com", "b@gmail.com", "a@gmail.com"] * 500)
    EmailCodec("e").fit(values).transform(values)
    for call in calls:
        assert len(call) == len(set(call))
    assert sorted(t for call in calls for t in call) == ["a", "b", "gmail"]
