"""Turns' events in Redis Streams: what one replica logs, another reads, in order, after any id."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orchestrator.cluster.event_log import LayeredEventLog, RedisEventLog
from orchestrator.cluster.redis import create_redis
from orchestrator.errors import EventLogUnavailable
from orchestrator.loop.event_log import EventPosition, LoggedEvent, MemoryEventLog
from orchestrator.loop.events import InteractionRequested, MessageEnd, Token
from tests.support.redis import SHARED_REDIS_URL, keys_matching, private_redis

END = MessageEnd("m1", "complete", "ab", 1, 2, 0, reason=None)


def redis_log(url: str, prefix: str, *, max_events: int = 1000) -> RedisEventLog:
    redis = create_redis(url, timeout_seconds=2)
    return RedisEventLog(redis, prefix, max_events=max_events, retention_seconds=60, block_seconds=1)


def ids(entries: list[LoggedEvent]) -> list[str]:
    return [str(entry.id) for entry in entries]


async def test_events_logged_on_one_replica_are_read_on_another_after_any_id(redis_prefix: str) -> None:
    writer, reader = redis_log(SHARED_REDIS_URL, redis_prefix), redis_log(SHARED_REDIS_URL, redis_prefix)
    asked = InteractionRequested("i1", "elicitation", "srv", "call-1", {"mode": "form", "message": "ok?"}, 30.0)
    await writer.append("t", EventPosition(1, 1), Token("a"))
    await writer.append("t", EventPosition(1, 2), asked)
    await writer.append("t", EventPosition(2, 1), Token("b"))  # the run that resumed the turn
    await writer.append("t", EventPosition(2, 2), END)
    await writer.append("t", EventPosition(2, 3), None)

    everything = await reader.read("t", None, wait_seconds=0)
    after_first = await reader.read("t", EventPosition(1, 1), wait_seconds=0)

    assert [entry.event for entry in everything] == [Token("a"), asked, Token("b"), END, None]
    assert ids(after_first) == ["t.1.2", "t.2.1", "t.2.2", "t.2.3"]
    assert await reader.read("t", EventPosition(2, 3), wait_seconds=0) == []


async def test_a_reader_waits_for_the_next_event(redis_prefix: str) -> None:
    writer, reader = redis_log(SHARED_REDIS_URL, redis_prefix), redis_log(SHARED_REDIS_URL, redis_prefix)
    read: list[LoggedEvent] = []

    async with anyio.create_task_group() as group:

        async def wait_for_more() -> None:
            with anyio.fail_after(10):
                while not read:
                    read.extend(await reader.read("t", None, wait_seconds=1))

        group.start_soon(wait_for_more)
        await writer.append("t", EventPosition(1, 1), Token("a"))

    assert [entry.event for entry in read] == [Token("a")]


async def test_a_turns_stream_is_capped_and_expires(redis_prefix: str) -> None:
    log = redis_log(SHARED_REDIS_URL, redis_prefix, max_events=10)
    for seq in range(1, 501):
        await log.append("t", EventPosition(1, seq), Token(str(seq)))

    kept = await log.read("t", None, wait_seconds=0)
    redis = create_redis(SHARED_REDIS_URL, timeout_seconds=2)
    [key] = await keys_matching(SHARED_REDIS_URL, f"{redis_prefix}turn-events:*")
    ttl = await redis.ttl(key)
    await redis.aclose()

    assert len(kept) < 500  # trimmed to about max_events (Redis trims whole nodes)
    assert kept[-1].event == Token("500")
    assert 0 < ttl <= 60


async def test_an_unreachable_redis_loses_events_without_failing_the_turn_and_reading_says_so(
    tmp_path: Path,
) -> None:
    async with private_redis(tmp_path) as redis:
        url = redis.url
    log = redis_log(url, "nowhere:")

    await log.append("t", EventPosition(1, 1), Token("a"))  # does not raise
    with pytest.raises(EventLogUnavailable):
        await log.read("t", None, wait_seconds=0)


async def test_a_replica_reads_its_own_turns_from_memory_even_while_redis_is_down(
    tmp_path: Path, redis_prefix: str
) -> None:
    async with private_redis(tmp_path) as redis:
        down_url = redis.url
    memory = MemoryEventLog(max_events=100, retention_seconds=60)
    running_here = LayeredEventLog(memory, redis_log(down_url, redis_prefix))
    await running_here.append("here", EventPosition(1, 1), Token("a"))

    assert [entry.event for entry in await running_here.read("here", None, wait_seconds=0)] == [Token("a")]
    with pytest.raises(EventLogUnavailable):  # a turn of another replica: only the shared log has it
        await running_here.read("elsewhere", None, wait_seconds=0)


async def test_a_turn_running_on_another_replica_is_read_from_redis(redis_prefix: str) -> None:
    other = LayeredEventLog(
        MemoryEventLog(max_events=100, retention_seconds=60), redis_log(SHARED_REDIS_URL, redis_prefix)
    )
    this = LayeredEventLog(
        MemoryEventLog(max_events=100, retention_seconds=60), redis_log(SHARED_REDIS_URL, redis_prefix)
    )
    await other.append("t", EventPosition(1, 1), Token("a"))
    await other.append("t", EventPosition(1, 2), Token("b"))

    assert ids(await this.read("t", EventPosition(1, 1), wait_seconds=0)) == ["t.1.2"]
