"""From an OpenAI request's messages to a turn of our own loop: its history, its user message, its limits."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from orchestrator.errors import InvalidParameter
from orchestrator.loop.gate import ToolGate
from orchestrator.loop.runner import LoopLimits, TurnRunner
from orchestrator.memory.types import NewMessage, ToolCallRecord
from orchestrator.openai_api.ephemeral import EphemeralConversation
from orchestrator.openai_api.schemas import ChatCompletionRequest, message_text

NO_ANSWER_SECONDS = 0.0
"""How long a tool's question to the user (elicitation, sampling, sign-in) waits over ``/v1``: nobody can answer."""


@dataclass(frozen=True, slots=True)
class PreparedTurn:
    runner: TurnRunner
    conversation_id: str
    content: str


def prepare_turn(
    runner: TurnRunner,
    body: ChatCompletionRequest,
    *,
    user_id: str,
    conversation_id: str,
    max_message_chars: int,
    gate: ToolGate | None = None,
) -> PreparedTurn:
    """A runner for one request: the client's system messages after the server's prompt, its other messages as
    the history, and the last one (which must be the user's) as the turn's message.

    Raises:
        InvalidParameter: the messages do not end with a user message, a message is not text, or a tool message
            has no ``tool_call_id``.
    """
    last = len(body.messages) - 1
    if body.messages[last].role != "user":
        raise InvalidParameter(
            f"messages[{last}].role", "the last message must be the user's (the assistant answers it)"
        )
    system: list[str] = []
    history: list[NewMessage] = []
    for index, message in enumerate(body.messages[:last]):
        text = message_text(message, index)
        if message.role in ("system", "developer"):
            if text.strip():
                system.append(text)
        elif message.role == "user":
            history.append(NewMessage(role="user", content=text))
        elif message.role == "assistant":
            calls = [
                ToolCallRecord(call.id, call.function.name, call.function.arguments)
                for call in message.tool_calls or ()
            ]
            history.append(NewMessage(role="assistant", content=text, tool_calls=calls))
        else:
            if not message.tool_call_id:
                raise InvalidParameter(f"messages[{index}].tool_call_id", "a tool message needs its 'tool_call_id'")
            history.append(NewMessage(role="tool", content=text, tool_call_id=message.tool_call_id))
    content = message_text(body.messages[last], last)
    if len(content) > max_message_chars:
        raise InvalidParameter(
            f"messages[{last}].content", f"the message is longer than {max_message_chars} characters"
        )
    limits = _limits(runner.limits, system, body.max_completion_tokens or body.max_tokens)
    store = EphemeralConversation(user_id, conversation_id, history)
    return PreparedTurn(runner.on_store(store, limits, gate), conversation_id, content)


def _limits(limits: LoopLimits, system: list[str], max_tokens: int | None) -> LoopLimits:
    prompt = "\n\n".join(part for part in (limits.system_prompt, *system) if part) or None
    if max_tokens is not None and limits.max_tokens is not None:
        max_tokens = min(max_tokens, limits.max_tokens)
    return dataclasses.replace(
        limits,
        system_prompt=prompt,
        max_tokens=max_tokens if max_tokens is not None else limits.max_tokens,
        interaction_timeout_seconds=NO_ANSWER_SECONDS,
    )
