"""Resource contents and prompt messages as text, for people (the API) and for the model (attachments)."""

from __future__ import annotations

import re
from typing import Final

from mcp_types import (
    AudioContent,
    BlobResourceContents,
    ContentBlock,
    EmbeddedResource,
    GetPromptResult,
    ImageContent,
    ReadResourceResult,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from orchestrator.mcp.results import truncate


def resource_text(result: ReadResourceResult, *, max_chars: int) -> str:
    """The text parts of a resource, joined; binary parts are described, not inlined."""
    text = "\n".join(_contents_text(contents) for contents in result.contents)
    return truncate(text, max_chars)[0]


def attachment_block(server_id: str, uri: str, result: ReadResourceResult, *, max_chars: int) -> str:
    """A resource attached to a user's message, delimited so the model can tell it from what the user wrote."""
    text = resource_text(result, max_chars=max_chars)
    return f'<attached-resource server="{server_id}" uri="{uri}">\n{text}\n</attached-resource>'


_ATTACHMENT_START: Final = re.compile(r'^<attached-resource server="', re.MULTILINE)


def without_attachments(message: str) -> str:
    """What the user wrote in ``message``: the text before the first block added by ``attachment_block``.

    Attachments always follow the user's text, so everything from the first one on is dropped; a resource's own
    text can therefore never pass for the user's, whatever tags it contains.
    """
    match = _ATTACHMENT_START.search(message)
    return (message[: match.start()] if match else message).strip()


def prompt_messages(result: GetPromptResult) -> list[tuple[str, str]]:
    """``(role, text)`` for each message of a rendered prompt."""
    return [(message.role, _block_text(message.content)) for message in result.messages]


def _contents_text(contents: TextResourceContents | BlobResourceContents) -> str:
    if isinstance(contents, TextResourceContents):
        return contents.text
    mime = f"{contents.mime_type}, " if contents.mime_type else ""
    return f"[binary resource: {contents.uri}, {mime}{len(contents.blob) * 3 // 4} bytes]"


def _block_text(block: ContentBlock) -> str:
    match block:
        case TextContent():
            return block.text
        case ImageContent() | AudioContent():
            return f"[{block.type}: {block.mime_type}]"
        case EmbeddedResource():
            return _contents_text(block.resource)
        case ResourceLink():
            return f"[resource: {block.uri}]"
