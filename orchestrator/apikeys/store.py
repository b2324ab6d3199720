"""The SQL of API keys (table ``api_keys``), run on the conversation store's ``Database``.

Every query that reads or changes a key is scoped to its user, except ``candidates``: finding whose key a request
presents is the one question asked before anyone is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import uuid4

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from orchestrator.apikeys.keys import ApiKeyRecord, NewSecret
from orchestrator.errors import ApiKeyNotFound, TooManyApiKeys
from orchestrator.memory.db import Database
from orchestrator.memory.models import ApiKey, User
from orchestrator.memory.types import UserIdentity

TOUCH_INTERVAL = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per key: a busy client does not write on every request."""

_COLUMNS = (
    ApiKey.id,
    ApiKey.user_id,
    ApiKey.name,
    ApiKey.prefix,
    ApiKey.created_at,
    ApiKey.last_used_at,
    ApiKey.revoked_at,
)
_ACTIVE = ApiKey.revoked_at.is_(None)
_LIST = (
    select(*_COLUMNS).where(ApiKey.user_id == bindparam("owner"), _ACTIVE).order_by(ApiKey.created_at.desc(), ApiKey.id)
)
_COUNT = select(func.count()).select_from(ApiKey).where(ApiKey.user_id == bindparam("owner"), _ACTIVE)
_CANDIDATES = (
    select(ApiKey.hash, *_COLUMNS, User.name, User.email)
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.prefix == bindparam("key_prefix"), _ACTIVE)
)
_REVOKE = (
    update(ApiKey)
    .where(ApiKey.id == bindparam("key_id"), ApiKey.user_id == bindparam("owner"), _ACTIVE)
    .values(revoked_at=bindparam("now"))
)
_TOUCH = (
    update(ApiKey)
    .where(
        ApiKey.id == bindparam("key_id"),
        or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < bindparam("stale_before")),
    )
    .values(last_used_at=bindparam("now"))
)


@dataclass(frozen=True, slots=True)
class KeyCandidate:
    """An active key whose prefix matches a presented secret; ``hash`` decides whether it is the one."""

    hash: str
    record: ApiKeyRecord
    user: UserIdentity


class ApiKeyStore(Protocol):
    async def add_key(self, user_id: str, name: str, secret: NewSecret, *, max_keys: int) -> ApiKeyRecord:
        """Raises: TooManyApiKeys when the user already has ``max_keys`` active keys."""
        ...

    async def list_keys(self, user_id: str) -> list[ApiKeyRecord]:
        """The user's active keys, newest first."""
        ...

    async def revoke_key(self, user_id: str, key_id: str) -> None:
        """Raises: ApiKeyNotFound (also for another user's key, or one revoked already)."""
        ...

    async def candidates(self, prefix: str) -> list[KeyCandidate]:
        """Active keys with this prefix (almost always one or none)."""
        ...

    async def touch(self, key_id: str) -> None:
        """Note that the key was just used (at most once per ``TOUCH_INTERVAL``)."""
        ...


def _record(row: Any) -> ApiKeyRecord:
    key_id, user_id, name, prefix, created_at, last_used_at, revoked_at = row
    return ApiKeyRecord(key_id, user_id, name, prefix, created_at, last_used_at, revoked_at)


class SqlApiKeyStore:
    """``ApiKeyStore`` on SQLite or PostgreSQL."""

    def __init__(self, database: Database, *, clock: Callable[[], datetime] | None = None) -> None:
        self._database = database
        self._clock = clock or (lambda: datetime.now(UTC))

    async def add_key(self, user_id: str, name: str, secret: NewSecret, *, max_keys: int) -> ApiKeyRecord:
        record = ApiKeyRecord(str(uuid4()), user_id, name, secret.prefix, self._clock())

        def add(connection: Connection) -> None:
            if connection.execute(_COUNT, {"owner": user_id}).scalar_one() >= max_keys:
                raise TooManyApiKeys(max_keys)
            connection.execute(
                insert(ApiKey).values(
                    id=record.id,
                    user_id=user_id,
                    name=name,
                    prefix=record.prefix,
                    hash=secret.hash,
                    created_at=record.created_at,
                )
            )

        await self._database.run_in_transaction(add)
        return record

    async def list_keys(self, user_id: str) -> list[ApiKeyRecord]:
        def read(connection: Connection) -> list[ApiKeyRecord]:
            return [_record(row) for row in connection.execute(_LIST, {"owner": user_id})]

        return await self._database.run(read)

    async def revoke_key(self, user_id: str, key_id: str) -> None:
        now = self._clock()

        def revoke(connection: Connection) -> int:
            return connection.execute(_REVOKE, {"key_id": key_id, "owner": user_id, "now": now}).rowcount

        if not await self._database.run(revoke):
            raise ApiKeyNotFound(key_id[:100])

    async def candidates(self, prefix: str) -> list[KeyCandidate]:
        def read(connection: Connection) -> list[KeyCandidate]:
            found: list[KeyCandidate] = []
            for row in connection.execute(_CANDIDATES, {"key_prefix": prefix}):
                key_hash, *columns, user_name, email = row
                record = _record(columns)
                found.append(KeyCandidate(key_hash, record, UserIdentity(record.user_id, user_name, email)))
            return found

        return await self._database.run(read)

    async def touch(self, key_id: str) -> None:
        now = self._clock()
        values = {"key_id": key_id, "now": now, "stale_before": now - TOUCH_INTERVAL}
        await self._database.run(lambda connection: connection.execute(_TOUCH, values), relaxed=True)


__all__ = ["ApiKeyStore", "KeyCandidate", "SqlApiKeyStore"]
