"""What the fake OpenAI server answers: scripted replies, ready-made responders, and the wire format.

Nothing here does I/O. ``tests.fakes.openai_server`` serves these replies over HTTP.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

# --- replies -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextReply:
    """An assistant answer, streamed ``chunk_size`` characters per chunk."""

    content: str
    chunk_size: int = 8
    finish_reason: str = "stop"


@dataclass(frozen=True, slots=True)
class ToolCallsReply:
    """One step that asks for tool calls; parallel calls get distinct ``call_...`` ids.

    Arguments are streamed ``chunk_size`` characters per chunk, as OpenAI splits them.
    """

    calls: tuple[tuple[str, str], ...]
    chunk_size: int = 8
    content: str = ""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An HTTP error with an OpenAI-shaped body and optional ``Retry-After`` / ``retry-after-ms`` headers."""

    status: int
    retry_after: float | None = None
    retry_after_ms: int | None = None
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CutReply:
    """Send the first ``after_chunks`` SSE events of ``reply`` and then break off.

    The first event of every stream only announces the assistant role (as OpenAI does), so ``after_chunks=2`` sends
    the role and the first text chunk. With ``abrupt`` the connection is closed mid-body (the client sees a broken
    transfer); without it the body ends cleanly but carries no ``finish_reason`` and no ``[DONE]``.
    """

    after_chunks: int
    reply: TextReply | ToolCallsReply
    abrupt: bool = True


@dataclass(frozen=True, slots=True)
class HangReply:
    """Wait ``seconds`` (or until the client goes away) and then answer with ``then``.

    With ``after_chunks`` the headers and that many SSE events of ``then`` go out before the wait (a stalled stream);
    otherwise nothing is sent (a request that never gets an answer). ``then=None`` asks the fallback responder.
    """

    seconds: float
    then: TextReply | ToolCallsReply | None = None
    after_chunks: int = 0


Reply = TextReply | ToolCallsReply | ErrorReply | CutReply | HangReply
Responder = Callable[[dict[str, Any]], Reply]
"""Builds a reply from the request body; used when the script of replies is empty."""


def text(content: str, chunk_size: int = 8) -> TextReply:
    return TextReply(content, chunk_size=chunk_size)


def tool_calls(calls: Sequence[tuple[str, str | Mapping[str, Any]]], chunk_size: int = 8) -> ToolCallsReply:
    """Ask for ``calls``: ``(tool name, arguments)`` pairs, arguments as JSON text or a mapping to encode."""
    encoded = tuple((name, args if isinstance(args, str) else json.dumps(args)) for name, args in calls)
    return ToolCallsReply(encoded, chunk_size=chunk_size)


def error(
    status: int,
    retry_after: float | None = None,
    body: Mapping[str, Any] | None = None,
    *,
    retry_after_ms: int | None = None,
) -> ErrorReply:
    return ErrorReply(status, retry_after=retry_after, retry_after_ms=retry_after_ms, body=body)


def cut(after_chunks: int, reply: TextReply | ToolCallsReply | None = None, *, abrupt: bool = True) -> CutReply:
    return CutReply(
        after_chunks, reply if reply is not None else text("This reply is cut off halfway through."), abrupt
    )


def hang(seconds: float, then: TextReply | ToolCallsReply | None = None, *, after_chunks: int = 0) -> HangReply:
    return HangReply(seconds, then=then, after_chunks=after_chunks)


# --- responders ----------------------------------------------------------------------------------------------------


def is_json_object(value: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict)


def is_json_array(value: object) -> TypeGuard[list[Any]]:
    return isinstance(value, list)


def _content_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if is_json_array(content):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(str(part.get("text", "")) for part in content if is_json_object(part))
    return ""


def _messages(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = request.get("messages")
    return [m for m in messages if is_json_object(m)] if is_json_array(messages) else []


def echo(request: dict[str, Any]) -> Reply:
    """Answer with the last user message."""
    users = [m for m in _messages(request) if m.get("role") == "user"]
    return text(_content_text(users[-1]) if users else "")


def tool_then_answer(tool_name: str, arguments: str | Mapping[str, Any]) -> Responder:
    """A responder that calls ``tool_name`` once per user message, then answers quoting the tool's result.

    After a user message it asks for the tool; after tool results it answers ``The tool said: <result>``.
    """
    call = tool_calls([(tool_name, arguments)])

    def respond(request: dict[str, Any]) -> Reply:
        messages = _messages(request)
        if messages and messages[-1].get("role") == "tool":
            results: list[str] = []
            for message in reversed(messages):
                if message.get("role") != "tool":
                    break
                results.append(_content_text(message))
            return text("The tool said: " + "\n".join(reversed(results)))
        if messages and messages[-1].get("role") == "user":
            return call
        return text("Done.")

    return respond


# --- request validation --------------------------------------------------------------------------------------------

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def validate_chat_request(body: Mapping[str, Any]) -> str | None:
    """The first reason OpenAI would answer 400 to this request, or ``None`` if it looks valid.

    Checks what a tool-calling loop can get wrong: message roles, tool names, and that every assistant ``tool_calls``
    entry is answered by exactly one tool message right after it (and no tool message answers nothing).
    """
    if not isinstance(body.get("model"), str):
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not is_json_array(messages) or not messages:
        return "'messages' must be a non-empty array"
    pending: set[str] = set()
    for position, message in enumerate(messages):
        if not is_json_object(message):
            return f"messages[{position}] must be an object"
        role = message.get("role")
        if role not in _ROLES:
            return f"messages[{position}].role {role!r} is not one of {sorted(_ROLES)}"
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return (
                    f"messages[{position}]: messages with role 'tool' must be a response to a preceding message with "
                    f"'tool_calls' (unknown or repeated tool_call_id {call_id!r})"
                )
            pending.discard(call_id)
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {sorted(pending)}"
            )
        calls = message.get("tool_calls")
        if role == "assistant" and calls is not None:
            if not is_json_array(calls) or not calls:
                return f"messages[{position}].tool_calls must be a non-empty array when given"
            for entry in calls:
                call_id = entry.get("id") if is_json_object(entry) else None
                if not isinstance(call_id, str) or not call_id:
                    return f"messages[{position}].tool_calls entries need an 'id'"
                pending.add(call_id)
    if pending:
        return f"tool_call_ids without response messages: {sorted(pending)}"
    tools = body.get("tools")
    if tools is not None:
        if not is_json_array(tools) or not tools:
            return "'tools' must be a non-empty array when given"
        for position, tool in enumerate(tools):
            function = tool.get("function") if is_json_object(tool) else None
            name = function.get("name") if is_json_object(function) else None
            if not isinstance(name, str) or not _TOOL_NAME.match(name):
                return f"Invalid 'tools[{position}].function.name': string does not match pattern '^[a-zA-Z0-9_-]+$'"
    return None


# --- wire format ---------------------------------------------------------------------------------------------------


def estimate_tokens(text_length: int) -> int:
    """About four characters per token, like OpenAI's rule of thumb."""
    return (text_length + 3) // 4


def prompt_tokens(body: Mapping[str, Any]) -> int:
    return estimate_tokens(len(json.dumps(body.get("messages"), separators=(",", ":"))))


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _pieces(value: str, size: int) -> list[str]:
    size = max(1, size)
    return [value[i : i + size] for i in range(0, len(value), size)]


def _completion_chars(reply: TextReply | ToolCallsReply) -> int:
    if isinstance(reply, TextReply):
        return len(reply.content)
    return len(reply.content) + sum(len(name) + len(args) for name, args in reply.calls)


@dataclass(slots=True)
class StreamRenderer:
    """Renders replies as OpenAI renders them: ``data: <chunk>\\n\\n`` events, a usage chunk, ``data: [DONE]``."""

    completion_id: str
    model: str
    created: int
    include_usage: bool
    prompt_tokens: int
    _prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self._prefix = (
            f'{{"id":"{self.completion_id}","object":"chat.completion.chunk","created":{self.created},'
            f'"model":{json.dumps(self.model)},"system_fingerprint":"fp_fake","choices":'
        )

    def _event(self, choices: str, usage: str = "null") -> bytes:
        return f'data: {self._prefix}{choices},"usage":{usage}}}\n\n'.encode()

    def _delta(self, delta: Mapping[str, Any], finish_reason: str | None = None) -> bytes:
        return self._event(
            f'[{{"index":0,"delta":{json.dumps(delta, separators=(",", ":"))},"logprobs":null,'
            f'"finish_reason":{json.dumps(finish_reason)}}}]'
        )

    def events(self, reply: TextReply | ToolCallsReply) -> list[bytes]:
        """Every SSE event of ``reply`` in order, ending with ``data: [DONE]``."""
        if isinstance(reply, TextReply):
            events = [self._delta({"role": "assistant", "content": "", "refusal": None})]
            events.extend(self._delta({"content": piece}) for piece in _pieces(reply.content, reply.chunk_size))
            finish_reason = reply.finish_reason
        else:
            events = [self._delta({"role": "assistant", "content": reply.content or None, "refusal": None})]
            for index, (name, arguments) in enumerate(reply.calls):
                head = {"index": index, "id": new_call_id(), "type": "function"}
                events.append(self._delta({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]}))
                events.extend(
                    self._delta({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                    for piece in _pieces(arguments, reply.chunk_size)
                )
            finish_reason = "tool_calls"
        events.append(self._delta({}, finish_reason))
        if self.include_usage:
            completion = estimate_tokens(_completion_chars(reply))
            usage = (
                f'{{"prompt_tokens":{self.prompt_tokens},"completion_tokens":{completion},'
                f'"total_tokens":{self.prompt_tokens + completion}}}'
            )
            events.append(self._event("[]", usage))
        events.append(b"data: [DONE]\n\n")
        return events

    def completion(self, reply: TextReply | ToolCallsReply) -> dict[str, Any]:
        """The same reply as one non-streamed ``chat.completion`` object."""
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None, "refusal": None}
        if isinstance(reply, ToolCallsReply):
            message["tool_calls"] = [
                {"id": new_call_id(), "type": "function", "function": {"name": name, "arguments": arguments}}
                for name, arguments in reply.calls
            ]
            finish_reason = "tool_calls"
        else:
            finish_reason = reply.finish_reason
        completion = estimate_tokens(_completion_chars(reply))
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion,
            },
        }


def error_body(status: int, message: str | None = None, code: str | None = None) -> dict[str, Any]:
    kind = {
        400: "invalid_request_error",
        401: "invalid_request_error",
        404: "invalid_request_error",
        429: "rate_limit_exceeded",
    }.get(status, "server_error")
    return {"error": {"message": message or f"fake error {status}", "type": kind, "param": None, "code": code}}
