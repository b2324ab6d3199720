"""One token refresh at a time per grant: a lock in this process, or a Redis lock shared by every replica.

Authorization servers that rotate refresh tokens accept each refresh token once; two replicas refreshing the same
grant at the same moment would leave one of them (and then the user) with a dead token. The refresher takes the
grant's lock, reads the grant again, and refreshes only if nobody did meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final, Protocol

import anyio
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

logger = logging.getLogger(__name__)

LOCK_TTL_SECONDS: Final = 30.0
"""A lock outlives a crashed holder by this much at most: longer than a token request may take."""
LOCK_WAIT_SECONDS: Final = 35.0


class LockUnavailable(Exception):
    """The lock could not be taken in time."""


class RefreshLocks(Protocol):
    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold the lock named ``key`` for the block. Raises: LockUnavailable."""
        ...


class LocalLocks:
    """Locks of this process: enough with one replica."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncGenerator[None]:
        lock, users = self._locks.get(key, (anyio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            with anyio.fail_after(LOCK_WAIT_SECONDS):
                await lock.acquire()
        except TimeoutError as exc:
            raise LockUnavailable(f"the lock {key!r} is held by another refresh") from exc
        finally:
            self._release_user(key)
        try:
            yield
        finally:
            lock.release()

    def _release_user(self, key: str) -> None:
        lock, users = self._locks[key]
        if users <= 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)


class RedisLocks:
    """Locks in Redis, shared by every replica; falls back to this process's locks while Redis cannot be reached.

    Args:
        redis: the client.
        prefix: prepended to every lock name.
    """

    def __init__(self, redis: Redis, prefix: str = "mcp-assistant:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._local = LocalLocks()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncGenerator[None]:
        # This replica's waiters queue here, so only one of them at a time waits on Redis.
        async with self._local.hold(key):
            lock = self._redis.lock(
                f"{self._prefix}lock:{key}", timeout=LOCK_TTL_SECONDS, blocking_timeout=LOCK_WAIT_SECONDS
            )
            try:
                acquired = await lock.acquire()
            except RedisError as exc:
                logger.warning("Redis is unavailable (%s); refreshing under this replica's lock only", exc)
                yield
                return
            if not acquired:
                raise LockUnavailable(f"the lock {key!r} is held by another refresh")
            try:
                yield
            finally:
                try:
                    await lock.release()
                except (LockError, RedisError) as exc:  # expired meanwhile, or Redis went away: it expires anyway
                    logger.warning("could not release the refresh lock %s: %s", key, exc)
