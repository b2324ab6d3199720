"""How an interrupted turn goes on: what its stored steps say, which tool calls may run again, what clients see.

Pure functions over stored messages; ``orchestrator.loop.turns`` does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.llm.types import ModelToolCall
from orchestrator.loop.events import Token, ToolCallFinished, ToolCallStarted, TurnEvent
from orchestrator.mcp.types import ToolSpec
from orchestrator.memory.types import MessageRecord, NewMessage, ToolCallRecord

INTERRUPTED_BY_RESTART = (
    "The tool call was interrupted when the assistant restarted, and was not run again because running it twice "
    "might repeat its effects; whether it took effect is unknown."
)


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """A turn's messages as stored: those before it, the user's message, and the steps of its reply so far."""

    history: Sequence[MessageRecord]
    user_message: MessageRecord
    steps: Sequence[MessageRecord]

    @property
    def final_reply(self) -> MessageRecord | None:
        """The reply that ended the turn, when it was stored before the turn could be marked ended."""
        last = self.steps[-1] if self.steps else None
        return last if last is not None and last.role == "assistant" and not last.tool_calls else None

    def unanswered_calls(self) -> list[ToolCallRecord]:
        """The tool calls of the last step whose result was never stored, in the order the model asked."""
        answered = {step.tool_call_id for step in self.steps if step.role == "tool"}
        for step in reversed(self.steps):
            if step.role == "assistant" and step.tool_calls:
                return [call for call in step.tool_calls if call.id not in answered]
        return []


def split_turn(records: Sequence[MessageRecord], user_message_id: str) -> StoredTurn | None:
    """The turn started by ``user_message_id``; None when that message is not (or no longer) there."""
    for index, record in enumerate(records):
        if record.id == user_message_id and record.role == "user":
            return StoredTurn(records[:index], record, records[index + 1 :])
    return None


def safe_to_repeat(spec: ToolSpec | None) -> bool:
    """A tool the server declares read-only or idempotent (MCP annotations); anything else may have effects.

    Such calls are also the only ones that run side by side with others in a step."""
    if spec is None or not spec.annotations:
        return False
    return spec.annotations.get("readOnlyHint") is True or spec.annotations.get("idempotentHint") is True


def interrupted_result(call: ToolCallRecord) -> NewMessage:
    return NewMessage(
        role="tool", content=INTERRUPTED_BY_RESTART, tool_call_id=call.id, tool_name=call.name, is_error=True
    )


def as_model_call(call: ToolCallRecord) -> ModelToolCall:
    return ModelToolCall(call.id, call.name, call.arguments)


def replayed_events(steps: Sequence[MessageRecord], specs: Mapping[str, ToolSpec]) -> list[TurnEvent]:
    """The events that told clients about ``steps`` when they happened, so a resumed turn's log is whole."""
    events: list[TurnEvent] = []
    for step in steps:
        if step.role == "assistant" and step.tool_calls:
            if step.content:
                events.append(Token(step.content))
            for call in step.tool_calls:
                spec = specs.get(call.name)
                events.append(
                    ToolCallStarted(
                        call.id,
                        call.name,
                        spec.server_id if spec else None,
                        spec.tool if spec else None,
                        call.arguments,
                    )
                )
        elif step.role == "tool" and step.tool_call_id is not None:
            events.append(
                ToolCallFinished(
                    step.tool_call_id, step.tool_name or "", step.is_error, step.content, False, step.duration_ms or 0
                )
            )
    return events
