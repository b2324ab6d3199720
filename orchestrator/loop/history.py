"""Turn stored messages into the message list the model sees."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.memory.types import MessageRecord

INTERRUPTED_TOOL_RESULT = "The tool call was interrupted before it finished; its result is unknown."


def build_history(records: Sequence[MessageRecord], *, max_chars: int) -> list[dict[str, Any]]:
    """Return the conversation as OpenAI chat messages, oldest first.

    The result is always valid for the Chat Completions API, whatever a crash left behind:

    * every assistant ``tool_calls`` entry is followed by exactly one tool result (a call whose result was never
      stored gets a synthetic "interrupted" result; duplicate or orphaned results are dropped);
    * failed assistant messages with no text are left out;
    * when the history is longer than ``max_chars``, the oldest turns are dropped, always cutting at a user
      message so that no tool result loses its call.
    """
    messages: list[dict[str, Any]] = []
    pending: dict[str, None] = {}  # tool_call_ids still waiting for a result, in order
    for record in records:
        if record.role == "tool":
            if record.tool_call_id in pending:
                del pending[record.tool_call_id]
                messages.append({"role": "tool", "tool_call_id": record.tool_call_id, "content": record.content})
            continue
        _close_pending(messages, pending)
        if record.role == "user":
            messages.append({"role": "user", "content": record.content})
            continue
        if record.tool_calls:
            messages.append(
                {
                    "role": "assistant",
                    "content": record.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                        for call in record.tool_calls
                    ],
                }
            )
            pending = dict.fromkeys(call.id for call in record.tool_calls)
        elif record.content:
            messages.append({"role": "assistant", "content": record.content})
    _close_pending(messages, pending)
    return _trim(messages, max_chars)


def tool_call_message(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """One entry of an assistant message's ``tool_calls``, in Chat Completions form."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _close_pending(messages: list[dict[str, Any]], pending: dict[str, None]) -> None:
    for call_id in pending:
        messages.append({"role": "tool", "tool_call_id": call_id, "content": INTERRUPTED_TOOL_RESULT})
    pending.clear()


def _size(message: dict[str, Any]) -> int:
    size = len(message.get("content") or "")
    for call in message.get("tool_calls", ()):
        size += len(call["function"]["arguments"]) + len(call["function"]["name"])
    return size


def _trim(messages: list[dict[str, Any]], max_chars: int) -> list[dict[str, Any]]:
    total = sum(_size(message) for message in messages)
    if total <= max_chars:
        return messages
    start = 0
    while total > max_chars and start < len(messages):
        total -= _size(messages[start])
        start += 1
        while start < len(messages) and messages[start]["role"] != "user":
            total -= _size(messages[start])
            start += 1
    if start >= len(messages):
        # Even the latest user message alone is too long: keep it, the model endpoint will say if it is too much.
        for index in range(len(messages) - 1, -1, -1):
            if messages[index]["role"] == "user":
                return messages[index:]
        return messages[-1:]
    return messages[start:]
