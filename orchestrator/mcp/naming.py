"""Tool names as the model sees them: ``<server_id>__<tool>``, always legal for OpenAI."""

from __future__ import annotations

import hashlib
import re
from typing import Final

EXPOSED_NAME_PATTERN: Final = r"^[a-zA-Z0-9_-]{1,64}$"
"""What OpenAI accepts as a function name."""

SEPARATOR: Final = "__"

_LEGAL = re.compile(EXPOSED_NAME_PATTERN)
_ILLEGAL_CHAR = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_LENGTH: Final = 64
_HASH_LENGTH: Final = 8


def expose_name(server_id: str, tool: str) -> str:
    """The name under which ``tool`` of ``server_id`` is offered to the model.

    ``<server_id>__<tool>`` when that is already legal and unambiguous. Otherwise illegal characters become ``_``,
    the name is cut to fit, and ``_<8 hex of sha256(server_id + NUL + tool)>`` is appended, so names that had to
    change stay distinct.

    A server id containing ``__`` or ending in ``_`` also takes the hash: without it ``("a_", "_b")`` and
    ``("a", "__b")`` would both read ``a____b``. With that rule an unhashed name splits back into its pair at the
    first ``__``, so two pairs never share an unhashed name.
    """
    candidate = f"{server_id}{SEPARATOR}{tool}"
    ambiguous = SEPARATOR in server_id or server_id.endswith("_")
    if not ambiguous and _LEGAL.fullmatch(candidate):
        return candidate
    digest = hashlib.sha256(f"{server_id}\0{tool}".encode()).hexdigest()[:_HASH_LENGTH]
    sanitized = _ILLEGAL_CHAR.sub("_", candidate)[: _MAX_LENGTH - _HASH_LENGTH - 1]
    return f"{sanitized}_{digest}"
