"""Text that every part of the service can carry: JSON, UTF-8, SQLite and PostgreSQL."""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def safe_text(text: str) -> str:
    """Replace NUL (refused by PostgreSQL) and lone surrogates (not UTF-8) with U+FFFD.

    Model and tool output can carry either (a JSON escape such as ``\\ud800`` parses to a lone surrogate); user
    input carrying them is refused with a 422 instead.
    """
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSAFE.sub("\ufffd", text)
