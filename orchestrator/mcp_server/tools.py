"""The assistant's own tools on its MCP endpoint: the caller's conversations, and asking the assistant itself.

Each tool acts for the API key's user and reads or writes only that user's conversations.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.auth import Caller
from orchestrator.errors import ConversationNotFound, InvalidInput, TurnInProgress
from orchestrator.lifespan import AppState
from orchestrator.loop.events import TurnError, TurnEvent
from orchestrator.mcp_server.search import ConversationSearch
from orchestrator.memory.types import ConversationRecord, MessageRecord

MAX_LIMIT = 100
MAX_QUERY_CHARS = 200
MAX_MESSAGES = 500

Handler = Callable[[AppState, Caller, Mapping[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class OwnTool:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler
    read_only: bool = True


def _conversation(record: ConversationRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "title": record.title,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


def _message(record: MessageRecord) -> dict[str, Any]:
    message: dict[str, Any] = {"role": record.role, "content": record.content, "status": record.status}
    if record.tool_calls:
        message["tool_calls"] = [{"name": call.name, "arguments": call.arguments} for call in record.tool_calls]
    if record.tool_name:
        message["tool_name"] = record.tool_name
    message["created_at"] = record.created_at.isoformat()
    return message


def _int(arguments: Mapping[str, Any], name: str, default: int, *, low: int, high: int) -> int:
    value = arguments.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"'{name}' must be a whole number from {low} to {high}")
    return value


def _text(arguments: Mapping[str, Any], name: str, *, max_chars: int, required: bool = True) -> str | None:
    value = arguments.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise InvalidInput(f"'{name}' must be a non-empty string of at most {max_chars} characters")
    return value


def _conversation_id(arguments: Mapping[str, Any], *, required: bool = True) -> str | None:
    value = arguments.get("conversation_id")
    if value is None and not required:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ConversationNotFound(str(value)[:100]) from None


async def list_conversations(state: AppState, caller: Caller, arguments: Mapping[str, Any]) -> Any:
    limit = _int(arguments, "limit", 20, low=1, high=MAX_LIMIT)
    offset = _int(arguments, "offset", 0, low=0, high=1_000_000)
    records = await state.store.list_conversations(caller.user.id, limit=limit, offset=offset)
    return {"conversations": [_conversation(record) for record in records]}


async def search_conversations(state: AppState, caller: Caller, arguments: Mapping[str, Any]) -> Any:
    query = _text(arguments, "query", max_chars=MAX_QUERY_CHARS) or ""
    limit = _int(arguments, "limit", 20, low=1, high=MAX_LIMIT)
    hits = await ConversationSearch(state.store.database).search(caller.user.id, query.strip(), limit=limit)
    return {"conversations": [{**_conversation(hit.conversation), "snippet": hit.snippet} for hit in hits]}


async def get_conversation(state: AppState, caller: Caller, arguments: Mapping[str, Any]) -> Any:
    conversation_id = _conversation_id(arguments) or ""
    record = await state.store.get_conversation(caller.user.id, conversation_id)
    messages = await state.store.list_messages(caller.user.id, conversation_id)
    shown = messages[-MAX_MESSAGES:]
    return {
        **_conversation(record),
        "messages": [_message(message) for message in shown],
        "earlier_messages_left_out": len(messages) - len(shown),
    }


async def ask(state: AppState, caller: Caller, arguments: Mapping[str, Any]) -> Any:
    """Run a turn of the assistant, stored in a conversation of the user (a new one without ``conversation_id``)."""
    message = _text(arguments, "message", max_chars=state.settings.max_message_chars) or ""
    conversation_id = _conversation_id(arguments, required=False)
    if conversation_id is None:
        conversation_id = (await state.store.create_conversation(caller.user.id)).id
    else:
        await state.store.get_conversation(caller.user.id, conversation_id)
    handle = state.turns.acquire(caller.user.id, conversation_id)
    errors: list[TurnError] = []

    async def collect(event: TurnEvent) -> None:
        if isinstance(event, TurnError):
            errors.append(event)

    try:
        started = await state.runner.start(caller.user, conversation_id, message)
        with handle.scope:
            await state.runner.run(started, collect)
    finally:
        handle.release()
    end = started.end
    if end is None:
        raise TurnInProgress(conversation_id)  # stopped from elsewhere before the reply was stored
    return {
        "conversation_id": conversation_id,
        "status": end.status,
        "reply": end.content,
        "reason": end.reason,
        "error_code": errors[-1].code if errors else None,
    }


_LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 20}
_CONVERSATION_ID = {
    "type": "string",
    "description": "A conversation id from list_conversations or search_conversations",
}

OWN_TOOLS: tuple[OwnTool, ...] = (
    OwnTool(
        "list_conversations",
        "List conversations",
        "List your conversations with the assistant, most recently updated first (id, title, dates).",
        {
            "type": "object",
            "properties": {"limit": _LIMIT, "offset": {"type": "integer", "minimum": 0, "default": 0}},
            "additionalProperties": False,
        },
        list_conversations,
    ),
    OwnTool(
        "search_conversations",
        "Search conversations",
        "Find your conversations whose title or messages contain the query (case-insensitive substring), "
        "most recently updated first, each with a snippet of the first matching message.",
        {
            "type": "object",
            "properties": {"query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS}, "limit": _LIMIT},
            "required": ["query"],
            "additionalProperties": False,
        },
        search_conversations,
    ),
    OwnTool(
        "get_conversation",
        "Read a conversation",
        f"Read one of your conversations: its title and messages in order (the last {MAX_MESSAGES} at most).",
        {
            "type": "object",
            "properties": {"conversation_id": _CONVERSATION_ID},
            "required": ["conversation_id"],
            "additionalProperties": False,
        },
        get_conversation,
    ),
    OwnTool(
        "ask",
        "Ask the assistant",
        "Send a message to the assistant and get its reply; it may use its own tools to answer. The exchange is "
        "kept in one of your conversations: a new one unless conversation_id names one to continue.",
        {
            "type": "object",
            "properties": {"message": {"type": "string", "minLength": 1}, "conversation_id": _CONVERSATION_ID},
            "required": ["message"],
            "additionalProperties": False,
        },
        ask,
        read_only=False,
    ),
)


def as_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
