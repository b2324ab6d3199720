"""Keep credentials out of what we show and log: server URLs, error messages and server output."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from orchestrator.mcp.types import ServerConfig

_MIN_SECRET_LENGTH: Final = 4
_MASK: Final = "***"
_SECRET_NAME: Final = re.compile(r"key|token|secret|passw|pwd|credential|auth", re.IGNORECASE)
"""A flag, query parameter or setting with such a name carries a credential."""
_URL: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
_MIN_ANONYMOUS_QUERY_SECRET: Final = 8
"""Query values this long are masked whatever their name: tokens are long, ``format=json`` is not worth hiding."""


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment, any of which may carry a credential."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}{parts.path}"


def config_secrets(config: ServerConfig) -> list[str]:
    """Values from ``config`` that may be credentials, to mask wherever they appear.

    They are: every env and header value and each word of those; in ``args``, the value of a flag whose name says
    it holds a credential (``--api-key X``, ``--token=X``, ``PASSWORD=X``); and in the URL and in URL-like args,
    the user info, the password, and the query values that look like credentials.
    """
    values = [*config.env.values(), *config.headers.values()]
    values += [word for value in values for word in value.split()]
    values += _arg_secrets(config.args)
    for text in (config.url or "", *config.args):
        for url in _URL.findall(text):
            values += _url_secrets(url)
    return values


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret of at least four characters masked, longest first."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def _arg_secrets(args: Iterable[str]) -> Iterator[str]:
    flag_wants_value = False
    for arg in args:
        if flag_wants_value and not arg.startswith("-"):
            yield arg
        flag_wants_value = False
        name, equals, value = arg.partition("=")
        if "://" in name:  # a URL whose query has '=': its own rules apply
            continue
        if equals:
            if value and _SECRET_NAME.search(name):
                yield value
        elif arg.startswith("-") and _SECRET_NAME.search(arg):
            flag_wants_value = True


def _url_secrets(url: str) -> Iterator[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    userinfo, at, _host = parts.netloc.rpartition("@")
    if at or parts.query:
        yield url
    if at:
        yield userinfo
    if password:
        yield password
    for name, value in parse_qsl(parts.query):
        if len(value) >= _MIN_ANONYMOUS_QUERY_SECRET or _SECRET_NAME.search(name):
            yield value
