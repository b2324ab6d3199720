"""Invisible Unicode in what MCP servers send: removed before the model reads it, and counted so it can be flagged.

Zero-width characters, bidirectional controls, tag characters and variation selectors render as nothing (or
reorder what is shown), so a tool description or result can carry instructions a person reviewing it never sees
while the model reads them. Legitimate text loses little: emoji joined by U+200D fall apart into their parts, and
an emoji's presentation selector (U+FE0F) goes, which is a small price for text the model treats as data.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

from orchestrator.mcp.types import ToolSpec

# Every format (Cf) and control (Cc) character but tab, newline and carriage return, spelled out rather than looked
# up in ``unicodedata`` at import (a scan of every code point costs a third of a second); a test checks the class
# against ``unicodedata``. Left out on purpose: the prepended concatenation marks (U+0600-0605, U+06DD, U+070F,
# U+0890-0891, U+08E2, U+110BD, U+110CD), which are Cf but visible signs that Arabic, Syriac and Kaithi numbers need.
_INVISIBLE = re.compile(
    "["
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0 and C1 controls, DEL
    "\u00ad\u061c\u180e"  # soft hyphen, Arabic letter mark, Mongolian vowel separator
    "\u200b-\u200f"  # zero-width space, non-joiner, joiner; left-to-right and right-to-left marks
    "\u202a-\u202e"  # bidirectional embeddings and overrides
    "\u2060-\u206f"  # word joiner, invisible operators, bidirectional isolates, deprecated format characters
    "\ufe00-\ufe0f"  # variation selectors
    "\ufeff"  # zero-width no-break space (byte order mark)
    "\ufff9-\ufffb"  # interlinear annotation controls
    "\U00013430-\U0001343f"  # Egyptian hieroglyph format controls
    "\U0001bca0-\U0001bca3"  # shorthand format controls
    "\U0001d173-\U0001d17a"  # musical symbol format controls
    "\U000e0000-\U000e007f"  # tag characters: an invisible copy of ASCII
    "\U000e0100-\U000e01ef"  # variation selectors supplement
    "]"
)

# Where a JSON Schema carries prose the model reads.
_SCHEMA_PROSE_KEYS = frozenset({"description", "title"})


def strip_invisible(text: str) -> tuple[str, int]:
    """``text`` without invisible format and control characters, and how many were removed.

    Tab, newline and carriage return stay.
    """
    return _INVISIBLE.subn("", text)


def clean_tool_spec(spec: ToolSpec) -> ToolSpec:
    """``spec`` with invisible characters removed from its description and its schema's descriptions and titles.

    The count lands in ``hidden_characters_removed``. Property names and values such as ``enum`` entries are left
    alone: changing them would change the arguments the server expects.
    """
    description, removed = strip_invisible(spec.description)
    schema, removed_in_schema = _clean_schema(spec.input_schema)
    total = removed + removed_in_schema
    if total == 0:
        return spec
    return dataclasses.replace(spec, description=description, input_schema=schema, hidden_characters_removed=total)


def _clean_schema(schema: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    cleaned: dict[str, Any] = {}
    removed = 0
    for key, value in schema.items():
        cleaned[key], count = _clean_value(value, prose=key in _SCHEMA_PROSE_KEYS)
        removed += count
    return cleaned, removed


def _clean_value(value: object, *, prose: bool) -> tuple[object, int]:
    if isinstance(value, str):
        return strip_invisible(value) if prose else (value, 0)
    if _is_object(value):
        return _clean_schema(value)
    if _is_array(value):
        pairs = [_clean_value(item, prose=False) for item in value]
        return [item for item, _ in pairs], sum(count for _, count in pairs)
    return value, 0


def _is_object(value: object) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(value, Mapping)


def _is_array(value: object) -> TypeGuard[list[Any]]:
    return isinstance(value, list)
