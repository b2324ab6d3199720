"""The SQL of turns (table ``turns``): start one with its user message, beat its heart, end it, take one over.

A turn is ``running`` from the moment the user's message is stored until its reply is; the replica running it
touches ``heartbeat_at`` every few seconds. A turn whose heartbeat is stale was left behind by a replica that
died: ``claim_turn`` hands it to exactly one replica (a conditional UPDATE), which resumes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from orchestrator.memory.models import Turn
from orchestrator.memory.types import NewTurn

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
"""The heartbeat of a released turn: stale for everyone."""

TurnState = Literal["running", "complete", "incomplete", "error", "failed"]
"""``failed``: the turn could not be resumed after its replica died (its reply says so)."""


@dataclass(frozen=True, slots=True)
class TurnRecord:
    id: str
    user_id: str
    conversation_id: str
    user_message_id: str
    status: TurnState
    owner: str | None
    heartbeat_at: datetime
    attempts: int
    created_at: datetime
    updated_at: datetime


class TurnStore(Protocol):
    async def latest_turn(self, user_id: str, conversation_id: str) -> TurnRecord | None:
        """The conversation's most recent turn, if the user owns the conversation and it has one."""
        ...

    async def beat_turn(self, turn_id: str, owner: str) -> bool:
        """Touch the running turn's heartbeat; False when it is no longer running under ``owner``."""
        ...

    async def end_turn(self, turn_id: str, owner: str, status: TurnState) -> None:
        """Record how the turn ended (only a running turn that ``owner`` runs changes)."""
        ...

    async def release_turn(self, turn_id: str, owner: str) -> None:
        """Let another replica take the running turn over at once (its heartbeat is made stale)."""
        ...

    async def stale_turns(self, stale_before: datetime, *, limit: int = 100) -> list[TurnRecord]:
        """Running turns whose heartbeat is older than ``stale_before``, oldest first."""
        ...

    async def claim_turn(self, turn_id: str, owner: str, stale_before: datetime) -> TurnRecord | None:
        """Take over a stale running turn, counting one more attempt; None when another replica was first."""
        ...


_COLUMNS = (
    Turn.id,
    Turn.user_id,
    Turn.conversation_id,
    Turn.user_message_id,
    Turn.status,
    Turn.owner,
    Turn.heartbeat_at,
    Turn.attempts,
    Turn.created_at,
    Turn.updated_at,
)
_INSERT = insert(Turn)
_LATEST = (
    select(*_COLUMNS)
    .where(Turn.conversation_id == bindparam("conversation"), Turn.user_id == bindparam("owner_user"))
    .order_by(Turn.created_at.desc(), Turn.id.desc())
    .limit(1)
)
_BEAT = (
    update(Turn)
    .where(Turn.id == bindparam("turn"), Turn.status == "running", Turn.owner == bindparam("me"))
    .values(heartbeat_at=bindparam("now"))
)
_END = (
    update(Turn)
    .where(Turn.id == bindparam("turn"), Turn.status == "running", Turn.owner == bindparam("me"))
    .values(status=bindparam("new_status"), updated_at=bindparam("now"))
)
_RELEASE = (
    update(Turn)
    .where(Turn.id == bindparam("turn"), Turn.status == "running", Turn.owner == bindparam("me"))
    .values(heartbeat_at=bindparam("long_ago"))
)
_STALE = (
    select(*_COLUMNS)
    .where(Turn.status == "running", Turn.heartbeat_at < bindparam("stale_before"))
    .order_by(Turn.heartbeat_at)
    .limit(bindparam("limit"))
)
_CLAIM = (
    update(Turn)
    .where(Turn.id == bindparam("turn"), Turn.status == "running", Turn.heartbeat_at < bindparam("stale_before"))
    .values(
        owner=bindparam("me"), heartbeat_at=bindparam("now"), attempts=Turn.attempts + 1, updated_at=bindparam("now")
    )
)
_GET = select(*_COLUMNS).where(Turn.id == bindparam("turn"))


def insert_turn(
    connection: Connection, turn: NewTurn, user_id: str, conversation_id: str, user_message_id: str, now: datetime
) -> None:
    connection.execute(
        _INSERT,
        {
            "id": turn.id,
            "user_id": user_id,
            "conversation_id": conversation_id,
            "user_message_id": user_message_id,
            "status": "running",
            "owner": turn.owner,
            "heartbeat_at": now,
            "attempts": 1,
            "created_at": now,
            "updated_at": now,
        },
    )


def latest_turn(connection: Connection, user_id: str, conversation_id: str) -> TurnRecord | None:
    row = connection.execute(_LATEST, {"conversation": conversation_id, "owner_user": user_id}).one_or_none()
    return _record(row) if row is not None else None


def beat_turn(connection: Connection, turn_id: str, owner: str, now: datetime) -> bool:
    return connection.execute(_BEAT, {"turn": turn_id, "me": owner, "now": now}).rowcount == 1


def end_turn(connection: Connection, turn_id: str, owner: str, status: TurnState, now: datetime) -> None:
    connection.execute(_END, {"turn": turn_id, "me": owner, "new_status": status, "now": now})


def release_turn(connection: Connection, turn_id: str, owner: str) -> None:
    connection.execute(_RELEASE, {"turn": turn_id, "me": owner, "long_ago": LONG_AGO})


def stale_turns(connection: Connection, stale_before: datetime, limit: int) -> list[TurnRecord]:
    return [_record(row) for row in connection.execute(_STALE, {"stale_before": stale_before, "limit": limit})]


def claim_turn(
    connection: Connection, turn_id: str, owner: str, stale_before: datetime, now: datetime
) -> TurnRecord | None:
    """Two statements; run in a transaction. The UPDATE's condition lets exactly one replica win."""
    claimed = connection.execute(_CLAIM, {"turn": turn_id, "me": owner, "stale_before": stale_before, "now": now})
    if claimed.rowcount != 1:
        return None
    return _record(connection.execute(_GET, {"turn": turn_id}).one())


def _record(row: Sequence[Any]) -> TurnRecord:
    return TurnRecord(*row)
