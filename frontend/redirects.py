"""Where a user may be sent back to after signing in: only a relative path on our own origin."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PATH = "/"
_MAX_LENGTH = 2_000


def safe_next_path(candidate: str | None) -> str:
    """``candidate`` if it is a path on this origin, else ``/``.

    Refuses absolute and scheme-relative URLs (``//evil``), backslash tricks browsers read as ``//`` (``/\\evil``),
    control characters, and anything that is not a plain path.
    """
    if not candidate or len(candidate) > _MAX_LENGTH:
        return DEFAULT_PATH
    if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return DEFAULT_PATH
    if any(ord(char) < 0x20 or ord(char) == 0x7F or char == "\\" for char in candidate):
        return DEFAULT_PATH
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return DEFAULT_PATH
    return candidate
