"""What an interrupted turn's stored steps say: its messages, its unanswered calls, which calls may run again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.loop.events import Token, ToolCallFinished, ToolCallStarted
from orchestrator.loop.resume import replayed_events, safe_to_repeat, split_turn
from orchestrator.mcp.types import ToolSpec
from orchestrator.memory.types import MessageRecord, Role, ToolCallRecord

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LOOKUP = ToolCallRecord("c1", "srv__lookup", "{}")
SEND = ToolCallRecord("c2", "srv__send", '{"to": "x"}')


def record(seq: int, role: Role, content: str = "", **fields: Any) -> MessageRecord:
    return MessageRecord(f"m{seq}", "conv", seq, role, content, "complete", NOW, **fields)


def spec(name: str, annotations: dict[str, Any] | None) -> ToolSpec:
    return ToolSpec(name, "srv", name.split("__")[1], "", {}, annotations)


def test_a_turn_is_split_at_its_user_message_and_knows_its_unanswered_calls() -> None:
    records = [
        record(1, "user", "earlier"),
        record(2, "assistant", "hi"),
        record(3, "user", "now"),
        record(4, "assistant", "checking", tool_calls=(LOOKUP, SEND)),
        record(5, "tool", "42", tool_call_id="c1", tool_name="srv__lookup"),
    ]

    turn = split_turn(records, "m3")

    assert turn is not None
    assert ([r.id for r in turn.history], turn.user_message.id, [r.id for r in turn.steps]) == (
        ["m1", "m2"],
        "m3",
        ["m4", "m5"],
    )
    assert turn.unanswered_calls() == [SEND]
    assert turn.final_reply is None
    assert split_turn(records, "m2") is None  # not a user message
    assert split_turn(records, "gone") is None


def test_a_turn_whose_reply_was_stored_has_a_final_reply() -> None:
    records = [record(1, "user", "hi"), record(2, "assistant", "hello")]

    turn = split_turn(records, "m1")

    assert turn is not None
    assert turn.final_reply == records[1]
    assert turn.unanswered_calls() == []


@pytest.mark.parametrize(
    ("annotations", "safe"),
    [
        ({"readOnlyHint": True}, True),
        ({"idempotentHint": True, "destructiveHint": True}, True),
        ({"readOnlyHint": False, "idempotentHint": False}, False),
        ({"readOnlyHint": "yes"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_only_tools_that_say_they_are_read_only_or_idempotent_may_run_again(
    annotations: dict[str, Any] | None, safe: bool
) -> None:
    assert safe_to_repeat(spec("srv__lookup", annotations)) is safe


def test_a_tool_that_is_gone_never_runs_again() -> None:
    assert safe_to_repeat(None) is False


def test_the_stored_steps_are_told_again_as_the_events_they_were() -> None:
    steps = [
        record(4, "assistant", "checking", tool_calls=(LOOKUP,)),
        record(5, "tool", "42", tool_call_id="c1", tool_name="srv__lookup", duration_ms=12),
    ]

    events = replayed_events(steps, {"srv__lookup": spec("srv__lookup", None)})

    assert events == [
        Token("checking"),
        ToolCallStarted("c1", "srv__lookup", "srv", "lookup", "{}"),
        ToolCallFinished("c1", "srv__lookup", False, "42", False, 12),
    ]
