"""Keep credentials out of what we show: server URLs and error messages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from orchestrator.mcp.types import ServerConfig

_MIN_SECRET_LENGTH: Final = 4
_MASK: Final = "***"


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
    """Values from ``config`` that may be credentials: every env and header value, and each word of those."""
    values = [*config.env.values(), *config.headers.values()]
    if config.url is not None and config.url != public_url(config.url):
        values.append(config.url)
    words = [word for value in values for word in value.split()]
    return [*values, *words]


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret of at least four characters masked, longest first."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text
