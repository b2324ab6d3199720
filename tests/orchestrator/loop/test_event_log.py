"""The in-process event log, and following a turn through any log: numbered events, replay after an id, the end."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.errors import InvalidInput
from orchestrator.loop.event_log import EventId, EventPosition, LoggedEvent, MemoryEventLog, follow
from orchestrator.loop.events import MessageEnd, Token

END = MessageEnd("m1", "complete", "ab", 1, 2, 0)


def texts(entries: list[LoggedEvent]) -> list[str]:
    return [entry.event.text if isinstance(entry.event, Token) else repr(entry.event) for entry in entries]


async def append_tokens(log: MemoryEventLog, turn_id: str, attempt: int, *tokens: str) -> None:
    for seq, token in enumerate(tokens, start=1):
        await log.append(turn_id, EventPosition(attempt, seq), Token(token))


def test_event_ids_read_back_as_they_were_written() -> None:
    event_id = EventId("1d2c3b4a-0000-4000-8000-000000000000", EventPosition(2, 17))

    assert str(event_id) == "1d2c3b4a-0000-4000-8000-000000000000.2.17"
    assert EventId.parse(str(event_id)) == event_id


@pytest.mark.parametrize("text", ["", "turn", "turn.1", "turn.x.2", "turn.1.-2", "t" * 65 + ".1.1"])
def test_an_event_id_that_is_not_ours_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput):
        EventId.parse(text)


async def test_reading_after_an_event_gives_exactly_the_later_ones_and_later_runs() -> None:
    log = MemoryEventLog(max_events=100, retention_seconds=60)
    await append_tokens(log, "t", 1, "a", "b", "c")
    await append_tokens(log, "t", 2, "A", "B")  # the turn resumed by another run

    assert texts(await log.read("t", None, wait_seconds=0)) == ["a", "b", "c", "A", "B"]
    assert texts(await log.read("t", EventPosition(1, 2), wait_seconds=0)) == ["c", "A", "B"]
    assert texts(await log.read("t", EventPosition(2, 2), wait_seconds=0)) == []
    assert await log.read("other", None, wait_seconds=0) == []


async def test_a_reader_waits_for_the_next_event() -> None:
    log = MemoryEventLog(max_events=100, retention_seconds=60)
    await append_tokens(log, "t", 1, "a")
    read: list[LoggedEvent] = []

    async with anyio.create_task_group() as group:

        async def wait_for_more() -> None:
            read.extend(await log.read("t", EventPosition(1, 1), wait_seconds=10))

        group.start_soon(wait_for_more)
        await anyio.wait_all_tasks_blocked()
        await log.append("t", EventPosition(1, 2), Token("b"))

    assert texts(read) == ["b"]


async def test_only_the_latest_events_are_kept_and_old_turns_are_forgotten() -> None:
    now = [0.0]
    log = MemoryEventLog(max_events=3, retention_seconds=60, clock=lambda: now[0])
    await append_tokens(log, "old", 1, "x")
    now[0] = 61.0
    await append_tokens(log, "t", 1, "a", "b", "c", "d")

    assert texts(await log.read("t", None, wait_seconds=0)) == ["b", "c", "d"]
    assert await log.read("old", None, wait_seconds=0) == []


async def test_following_stops_at_the_end_of_the_turns_events() -> None:
    log = MemoryEventLog(max_events=100, retention_seconds=60)
    await append_tokens(log, "t", 1, "a", "b")
    await log.append("t", EventPosition(1, 3), END)
    await log.append("t", EventPosition(1, 4), None)

    async def running() -> bool:
        return True

    with anyio.fail_after(5):
        followed = [entry async for entry in follow(log, "t", EventPosition(1, 1), still_running=running)]

    assert [entry.event for entry in followed] == [Token("b"), END]
    assert [str(entry.id) for entry in followed] == ["t.1.2", "t.1.3"]


async def test_following_a_turn_that_stopped_running_without_an_end_stops_too() -> None:
    log = MemoryEventLog(max_events=100, retention_seconds=60)
    await append_tokens(log, "t", 1, "a")
    checks = 0

    async def running() -> bool:
        nonlocal checks
        checks += 1
        return False

    with anyio.fail_after(5):
        followed = [entry async for entry in follow(log, "t", None, still_running=running, poll_seconds=0.01)]

    assert texts(followed) == ["a"]
    assert checks == 1
