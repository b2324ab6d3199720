"""A turn's events, numbered and kept for a while, so any number of clients can follow a turn and catch up.

The turn appends every event it emits; clients read from the log, never from the turn, so a browser that reloads
(or reconnects to another replica, with the Redis log) asks for the events after the last one it saw and gets
exactly those. Events are numbered per turn by ``EventPosition``: the run of the turn (``attempt``, one more each
time a turn left behind by a dead replica is resumed) and the event's number within that run. An event's public id
(the SSE ``id:``) is ``<turn id>.<attempt>.<seq>``. The end of a turn's events is a marker (``event=None``) that
readers stop at; it is never sent to clients.

``MemoryEventLog`` keeps the log in this process (one replica); ``orchestrator.cluster.event_log.RedisEventLog``
keeps it in Redis Streams for every replica.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from orchestrator.errors import InvalidInput
from orchestrator.loop.events import TurnEvent


@dataclass(frozen=True, order=True, slots=True)
class EventPosition:
    attempt: int
    seq: int


@dataclass(frozen=True, slots=True)
class EventId:
    turn_id: str
    position: EventPosition

    def __str__(self) -> str:
        return f"{self.turn_id}.{self.position.attempt}.{self.position.seq}"

    @classmethod
    def parse(cls, text: str) -> EventId:
        """Raises: InvalidInput: ``text`` is not an event id of ours."""
        turn_id, _, rest = text.strip().partition(".")
        attempt, _, seq = rest.partition(".")
        if not turn_id or len(turn_id) > 64 or not attempt.isdigit() or not seq.isdigit():
            raise InvalidInput("the event id is not one of ours (expected <turn id>.<attempt>.<number>)")
        return cls(turn_id, EventPosition(int(attempt), int(seq)))


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    id: EventId
    event: TurnEvent | None
    """``None``: the turn's events end here."""


class EventLog(Protocol):
    async def append(self, turn_id: str, position: EventPosition, event: TurnEvent | None) -> None:
        """Add the event at ``position`` (after every earlier one); ``None`` ends the turn's events.

        Never raises for a log that is unavailable: the turn goes on (its messages are stored either way).
        """
        ...

    async def read(self, turn_id: str, after: EventPosition | None, *, wait_seconds: float) -> list[LoggedEvent]:
        """The turn's events after ``after`` (all of them for ``None``), in order.

        Waits up to ``wait_seconds`` for the first one when there is none yet, then returns what there is (maybe
        nothing). Raises ``EventLogUnavailable`` when the log cannot be read.
        """
        ...


SWEEP_SECONDS = 1.0
"""The in-process log looks for turns to forget at most this often (not on every token)."""
POLL_SECONDS = 5.0
"""How long a follower waits for an event before it checks that the turn still runs."""


async def follow(
    log: EventLog,
    turn_id: str,
    after: EventPosition | None,
    *,
    still_running: Callable[[], Awaitable[bool]],
    poll_seconds: float = POLL_SECONDS,
) -> AsyncIterator[LoggedEvent]:
    """The turn's events after ``after``, as they come, until the end of its events.

    A turn that stops running without an end in the log (its replica died, and the log was that replica's own)
    ends the following too, once ``still_running`` says so: the client then reads the stored conversation.
    """
    position = after
    while True:
        batch = await log.read(turn_id, position, wait_seconds=poll_seconds)
        if not batch and not await still_running():
            batch = await log.read(turn_id, position, wait_seconds=0)  # an end that came in meanwhile
            if not batch:
                return
        for entry in batch:
            if entry.event is None:
                return
            position = entry.id.position
            yield entry


@dataclass(eq=False)
class _TurnEvents:
    events: list[LoggedEvent] = field(default_factory=list[LoggedEvent])
    changed: anyio.Event = field(default_factory=anyio.Event)
    touched: float = 0.0


def _position(entry: LoggedEvent) -> EventPosition:
    return entry.id.position


class MemoryEventLog:
    """Implements ``EventLog`` in this process: at most ``max_events`` per turn (the oldest go first), each turn's
    events forgotten ``retention_seconds`` after its last one."""

    def __init__(
        self, *, max_events: int, retention_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_events = max_events
        self._retention = retention_seconds
        self._clock = clock
        self._turns: dict[str, _TurnEvents] = {}
        self._next_sweep = 0.0

    def knows(self, turn_id: str) -> bool:
        """Whether this log holds events of the turn (it runs, or ran recently, in this process)."""
        entries = self._turns.get(turn_id)
        return entries is not None and bool(entries.events)

    async def append(self, turn_id: str, position: EventPosition, event: TurnEvent | None) -> None:
        now = self._clock()
        self._forget_old(now)
        entries = self._turns.setdefault(turn_id, _TurnEvents())
        entries.events.append(LoggedEvent(EventId(turn_id, position), event))
        if len(entries.events) > self._max_events:
            del entries.events[: len(entries.events) - self._max_events]
        entries.touched = now
        entries.changed.set()
        entries.changed = anyio.Event()

    async def read(self, turn_id: str, after: EventPosition | None, *, wait_seconds: float) -> list[LoggedEvent]:
        with anyio.move_on_after(wait_seconds):
            while True:
                entries = self._turns.get(turn_id)
                if entries is None:  # nothing yet: wait for the turn's first event
                    entries = self._turns[turn_id] = _TurnEvents(touched=self._clock())
                start = 0 if after is None else bisect.bisect_right(entries.events, after, key=_position)
                if start < len(entries.events):
                    return entries.events[start:]
                await entries.changed.wait()
        return []

    def _forget_old(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + min(self._retention, SWEEP_SECONDS)
        for turn_id in [turn_id for turn_id, entries in self._turns.items() if now - entries.touched > self._retention]:
            del self._turns[turn_id]
