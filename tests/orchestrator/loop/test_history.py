from datetime import UTC, datetime
from typing import Any

from orchestrator.loop.history import INTERRUPTED_TOOL_RESULT, build_history
from orchestrator.memory.types import MessageRecord, ToolCallRecord

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def message(seq: int, role: Any, content: str = "", **fields: Any) -> MessageRecord:
    return MessageRecord(
        id=f"m{seq}",
        conversation_id="c",
        seq=seq,
        role=role,
        content=content,
        status="complete",
        created_at=NOW,
        **fields,
    )


def call(call_id: str) -> ToolCallRecord:
    return ToolCallRecord(call_id, "notes__add", "{}")


def test_a_complete_conversation_is_sent_as_stored() -> None:
    records = [
        message(1, "user", "hi"),
        message(2, "assistant", "", tool_calls=[call("a")]),
        message(3, "tool", "done", tool_call_id="a"),
        message(4, "assistant", "ok"),
    ]

    history = build_history(records, max_chars=10_000)

    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[1]["tool_calls"][0]["id"] == "a"
    assert history[2] == {"role": "tool", "tool_call_id": "a", "content": "done"}


def test_a_tool_call_whose_result_was_never_stored_gets_an_interrupted_result() -> None:
    records = [
        message(1, "user", "hi"),
        message(2, "assistant", "", tool_calls=[call("a"), call("b")]),
        message(3, "tool", "done", tool_call_id="b"),
        message(4, "user", "still there?"),
    ]

    history = build_history(records, max_chars=10_000)

    results = {m["tool_call_id"]: m["content"] for m in history if m["role"] == "tool"}
    assert results == {"b": "done", "a": INTERRUPTED_TOOL_RESULT}
    assert history[-1] == {"role": "user", "content": "still there?"}


def test_duplicate_and_orphaned_tool_results_are_dropped() -> None:
    records = [
        message(1, "user", "hi"),
        message(2, "tool", "orphan", tool_call_id="zzz"),
        message(3, "assistant", "", tool_calls=[call("a")]),
        message(4, "tool", "first", tool_call_id="a"),
        message(5, "tool", "second", tool_call_id="a"),
    ]

    history = build_history(records, max_chars=10_000)

    assert [m.get("content") for m in history if m["role"] == "tool"] == ["first"]


def test_failed_replies_without_text_are_left_out() -> None:
    records = [message(1, "user", "hi"), message(2, "assistant", ""), message(3, "user", "again")]

    assert [m["role"] for m in build_history(records, max_chars=10_000)] == ["user", "user"]


def test_long_histories_are_cut_at_a_user_message() -> None:
    records = [
        message(1, "user", "x" * 100),
        message(2, "assistant", "", tool_calls=[call("a")]),
        message(3, "tool", "y" * 100, tool_call_id="a"),
        message(4, "assistant", "z" * 100),
        message(5, "user", "latest"),
        message(6, "assistant", "reply"),
    ]

    history = build_history(records, max_chars=50)

    assert history == [{"role": "user", "content": "latest"}, {"role": "assistant", "content": "reply"}]


def test_a_single_message_over_the_limit_is_still_sent() -> None:
    history = build_history([message(1, "user", "x" * 500)], max_chars=10)

    assert history == [{"role": "user", "content": "x" * 500}]
