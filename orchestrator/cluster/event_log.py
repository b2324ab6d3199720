"""Turns' events in Redis Streams, so a client can follow a turn from any replica (see ``loop.event_log``).

One stream per turn, ``<prefix>turn-events:<turn id>``; each entry's stream id is ``<attempt>-<seq>``, which Redis
orders exactly as ``EventPosition`` does, so "the events after X" is one ``XREAD`` from X. Streams are capped at
about ``max_events`` entries (``MAXLEN ~``) and expire ``retention_seconds`` after their last event.

``LayeredEventLog`` puts a replica's own turns in its memory too, so their clients never wait on Redis.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from orchestrator.errors import EventLogUnavailable
from orchestrator.loop.event_log import EventId, EventLog, EventPosition, LoggedEvent, MemoryEventLog
from orchestrator.loop.events import TurnEvent, event_from_payload, event_payload

logger = logging.getLogger(__name__)

_END = b"end"
_READ_COUNT = 1000


class RedisEventLog:
    """Implements ``EventLog`` on Redis Streams.

    Args:
        block_seconds: the longest one ``XREAD`` blocks; below the client's socket timeout, so a wait is never
            mistaken for a dead connection.
    """

    def __init__(
        self, redis: Redis, prefix: str, *, max_events: int, retention_seconds: int, block_seconds: float
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max_events = max_events
        self._retention = retention_seconds
        self._block_ms = max(1, int(block_seconds * 1000))

    def _key(self, turn_id: str) -> str:
        return f"{self._prefix}turn-events:{turn_id}"

    async def append(self, turn_id: str, position: EventPosition, event: TurnEvent | None) -> None:
        fields: dict[Any, Any] = (
            {b"e": _END}
            if event is None
            else {b"e": event.event, b"d": json.dumps(event_payload(event), ensure_ascii=False, separators=(",", ":"))}
        )
        key = self._key(turn_id)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(key, fields, id=f"{position.attempt}-{position.seq}", maxlen=self._max_events)  # pyright: ignore[reportUnknownMemberType]
                pipe.expire(key, self._retention)
                await pipe.execute()  # pyright: ignore[reportUnknownMemberType]
        except (RedisError, OSError) as exc:
            # The turn goes on without its followers: its messages are stored, a reload shows them.
            logger.warning("a turn event was not logged: %s", type(exc).__name__, extra={"turn_id": turn_id})

    async def read(self, turn_id: str, after: EventPosition | None, *, wait_seconds: float) -> list[LoggedEvent]:
        key = self._key(turn_id)
        start = "0-0" if after is None else f"{after.attempt}-{after.seq}"
        block = min(self._block_ms, max(1, int(wait_seconds * 1000)))
        try:
            answer: Any = await self._redis.xread({key: start}, count=_READ_COUNT, block=block)  # pyright: ignore[reportUnknownMemberType]
        except (RedisError, OSError) as exc:
            raise EventLogUnavailable(type(exc).__name__) from exc
        events: list[LoggedEvent] = []
        for _stream, entries in answer or ():
            for entry_id, fields in entries:
                events.append(_logged(turn_id, entry_id, fields))
        return events


class LayeredEventLog:
    """Implements ``EventLog``: every event in this process and in the shared log; read here when it is here.

    Clients of the turns this replica runs read them from memory (no round trip, and unaffected by a Redis
    outage); clients of turns running elsewhere read the shared log.
    """

    def __init__(self, local: MemoryEventLog, shared: EventLog) -> None:
        self._local = local
        self._shared = shared

    async def append(self, turn_id: str, position: EventPosition, event: TurnEvent | None) -> None:
        await self._local.append(turn_id, position, event)
        await self._shared.append(turn_id, position, event)

    async def read(self, turn_id: str, after: EventPosition | None, *, wait_seconds: float) -> list[LoggedEvent]:
        if self._local.knows(turn_id):
            return await self._local.read(turn_id, after, wait_seconds=wait_seconds)
        return await self._shared.read(turn_id, after, wait_seconds=wait_seconds)


def _logged(turn_id: str, entry_id: bytes, fields: dict[bytes, bytes]) -> LoggedEvent:
    attempt, _, seq = entry_id.decode().partition("-")
    event_id = EventId(turn_id, EventPosition(int(attempt), int(seq)))
    name = fields.get(b"e", _END)
    if name == _END:
        return LoggedEvent(event_id, None)
    return LoggedEvent(event_id, event_from_payload(name.decode(), json.loads(fields.get(b"d", b"{}"))))
