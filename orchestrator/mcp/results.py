"""Render an MCP tool result as the text the model reads."""

from __future__ import annotations

import json

from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from orchestrator.mcp.types import ToolOutput
from orchestrator.mcp.unicode import strip_invisible


def render_result(result: CallToolResult, *, max_chars: int) -> ToolOutput:
    """Turn ``result`` into a :class:`ToolOutput` whose text is at most ``max_chars`` characters plus a marker.

    Text blocks are joined with newlines; embedded text resources contribute their text; binary content is
    described (``[image: image/png, 1234 bytes]``) rather than inlined; resource links read ``[resource: uri]``.
    When there is no content at all but ``structured_content`` is set, its JSON is the text; otherwise the content
    already says what the structured content says (the spec asks servers to send both), and it is left alone.

    Invisible characters (zero-width, bidirectional controls, tags: see ``orchestrator.mcp.unicode``) are removed
    from what the model reads, and the text ends with a marker saying how many, so nobody is left unaware of them.
    """
    parts = [_render_block(block) for block in result.content]
    if parts or result.structured_content is None:
        text = "\n".join(parts)
    else:
        text = json.dumps(result.structured_content, ensure_ascii=False, default=str)
    text, truncated = truncate(text, max_chars)
    # After truncating: only what the model reads is searched, so a huge result costs no more than a short one.
    text, hidden = strip_invisible(text)
    if hidden:
        text += f"\n\n[{hidden} invisible character{'' if hidden == 1 else 's'} removed]"
    return ToolOutput(text=text, is_error=result.is_error, truncated=truncated, hidden_characters_removed=hidden)


def truncate(text: str, max_chars: int) -> tuple[str, bool]:
    """Cut ``text`` to ``max_chars`` characters, appending a marker that says how much was dropped."""
    if len(text) <= max_chars:
        return text, False
    marker = f"\n\n[truncated: showing {max_chars} of {len(text)} characters]"
    return text[:max_chars] + marker, True


def _render_block(block: ContentBlock) -> str:
    match block:
        case TextContent():
            return block.text
        case ImageContent() | AudioContent():
            return f"[{block.type}: {block.mime_type}, {_base64_size(block.data)} bytes]"
        case EmbeddedResource():
            return _render_resource(block.resource)
        case ResourceLink():
            return f"[resource: {block.uri}]"


def _render_resource(resource: TextResourceContents | BlobResourceContents) -> str:
    if isinstance(resource, TextResourceContents):
        return resource.text
    mime = f"{resource.mime_type}, " if resource.mime_type else ""
    return f"[resource: {resource.uri}, {mime}{_base64_size(resource.blob)} bytes]"


def _base64_size(data: str) -> int:
    """Decoded size of base64 ``data``, without decoding it."""
    stripped = data.rstrip()
    padding = len(stripped) - len(stripped.rstrip("="))
    return max(len(stripped) * 3 // 4 - padding, 0)
