"""Secrets kept out of everything a person reads: logs, errors, reports, asset metadata, the UI.

A warehouse URL is shown with its password masked (``postgresql://ana:***@db/sales``), and any text
that leaves the warehouse layer — a driver's error message, say — has the password and the full
URL replaced before it is raised. The spec never holds a password: it names the environment
variable that does (``warehouse.password_env``), or the one that holds the whole URL
(``warehouse.url_env``).
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote, quote_plus, unquote

MASK = "***"
# query parameters of a URL that carry secrets (masked like the password)
SECRET_PARAMETERS = ("password", "pwd", "passwd", "secret", "token", "access_token", "api_key", "apikey",
                     "private_key", "client_secret", "sslpassword")


# a scheme and slashes before ``user:secret@`` in a URL SQLAlchemy cannot parse (a typo)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:?/*")


def _inline_secret(url: str) -> str | None:
    """The password of ``user:password@`` in a URL that does not parse (``postgresql:/ana:pw@db``,
    ``postgresql//ana:pw@db``, a ``/`` in the password), or None."""
    if "@" not in (url or "") or url.lower().startswith(("duckdb:", "files:", "file:")):  # paths, not logins
        return None
    userinfo = _SCHEME.sub("", url.split("@", 1)[0], count=1)
    return userinfo.split(":", 1)[1] if ":" in userinfo and userinfo.split(":", 1)[1] else None


class SecretError(ValueError):
    """A secret is missing from the environment, or sits where it would be shown."""


def _parsed(url: str):
    try:
        from sqlalchemy.engine import make_url

        return make_url(url)
    except Exception:  # not a SQLAlchemy URL (duckdb:///..., files:///..., a typo)
        return None


def url_password(url: str) -> str | None:
    """The password written into a URL, if any (also in one that does not parse, e.g. a missing ``:``)."""
    parsed = _parsed(url)
    if parsed is not None and parsed.password:
        return parsed.password
    return _inline_secret(url)


def secret_parameters(url: str) -> dict[str, str]:
    """Query parameters of a URL that hold secrets (``?password=…``, ``?token=…``)."""
    parsed = _parsed(url)
    if parsed is None:
        return {}
    return {k: (v if isinstance(v, str) else ",".join(v)) for k, v in parsed.query.items()
            if k.lower() in SECRET_PARAMETERS}


def display_url(url: str) -> str:
    """The URL as it may be shown: password and secret query parameters masked."""
    parsed = _parsed(url)
    if parsed is None or (parsed.password is None and not secret_parameters(url)):
        secret = _inline_secret(url)
        return url.replace(f":{secret}@", f":{MASK}@", 1) if secret else url
    masked = parsed.update_query_dict({k: MASK for k in secret_parameters(url)}) if secret_parameters(url) else parsed
    return masked.render_as_string(hide_password=True)


def redact(text: str, url: str | None = None, *secrets: str | None) -> str:
    """``text`` with the URL's password, its secret parameters, the URL itself and ``secrets``
    replaced by the mask (also in their URL-quoted forms)."""
    found = [s for s in secrets if s]
    if url:
        found += [s for s in (url_password(url), *secret_parameters(url).values()) if s]
    if url and url != display_url(url):
        text = text.replace(url, display_url(url))
    for s in found:  # in its URL form whatever its length
        text = text.replace(f":{s}@", f":{MASK}@")
    for s in sorted(set(found), key=len, reverse=True):
        for form in {s, quote(s, safe=""), quote_plus(s), unquote(s)}:
            if len(form) >= 3:  # a one- or two-character password would mask half the message
                text = text.replace(form, MASK)
    return text


def from_environment(variable: str, what: str) -> str:
    """The value of an environment variable the spec names, or a clear error saying what to set."""
    value = os.environ.get(variable)
    if not value:
        raise SecretError(f"{what} comes from the environment variable {variable}, which is not set: set it in "
                          "the environment of every process that runs the pipeline (the Dagster webserver, "
                          "daemon and run workers), then reload the code location.")
    return value
