"""Where an authorization server's answer (the browser's redirect to our callback) meets the sign-in waiting for it.

A sign-in runs where it started: the replica that made the authorization request holds its PKCE verifier and waits
for the code. The browser comes back through any replica; ``CallbackInbox.deliver`` hands the answer over (after
checking that it comes from the user who started the sign-in), and the callback then waits for the sign-in's
``outcome`` to tell the user whether it worked. Within one process this is memory; with Redis, every replica shares
it (``RedisInbox``), and a sign-in started and finished on the same replica still works while Redis is down.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Final, Literal, Protocol

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from orchestrator.errors import AuthorizationRequestNotFound

logger = logging.getLogger(__name__)

OUTCOME_TTL_SECONDS: Final = 120
_POLL_SECONDS: Final = 5.0
"""How long one blocking pop waits in Redis before the loop looks again (and notices cancellation)."""


@dataclass(frozen=True, slots=True)
class CallbackOwner:
    """Who started a sign-in, and to which server."""

    user_id: str
    server_id: str


@dataclass(frozen=True, slots=True)
class Callback:
    """The authorization response, as the authorization server sent it back through the browser."""

    state: str
    code: str | None = None
    iss: str | None = None
    error: str | None = None
    error_description: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Literal["connected", "failed"]
    message: str


class CallbackInbox(Protocol):
    async def expect(self, state: str, owner: CallbackOwner, ttl_seconds: float) -> None:
        """Announce a sign-in whose authorization response will come back with ``state``."""
        ...

    async def deliver(self, user_id: str, callback: Callback) -> CallbackOwner:
        """Hand an authorization response to the sign-in waiting for it; each is delivered once.

        Raises:
            AuthorizationRequestNotFound: no sign-in of this user waits for this ``state`` (unknown, expired,
                already answered, or another user's).
        """
        ...

    async def receive(self, state: str, timeout_seconds: float) -> Callback | None:
        """The authorization response for ``state``, or ``None`` when none came in time."""
        ...

    async def report(self, state: str, outcome: Outcome) -> None:
        """Say how the sign-in ended, for the callback that delivered its response."""
        ...

    async def outcome(self, state: str, timeout_seconds: float) -> Outcome | None: ...

    async def forget(self, state: str) -> None:
        """The sign-in is over: a late response for it is refused."""
        ...


class _Slot:
    def __init__(self, owner: CallbackOwner) -> None:
        self.owner = owner
        self.callback: Callback | None = None
        self.outcome: Outcome | None = None
        self.delivered = anyio.Event()
        self.reported = anyio.Event()


class LocalInbox:
    """The inbox of one process."""

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}

    def knows(self, state: str) -> bool:
        return state in self._slots

    async def expect(self, state: str, owner: CallbackOwner, ttl_seconds: float) -> None:
        del ttl_seconds  # the sign-in's own timeout ends it, and ``forget`` removes the slot
        self._slots[state] = _Slot(owner)

    async def deliver(self, user_id: str, callback: Callback) -> CallbackOwner:
        slot = self._slots.get(callback.state)
        if slot is None or slot.owner.user_id != user_id or slot.callback is not None:
            raise AuthorizationRequestNotFound("this sign-in")
        slot.callback = callback
        slot.delivered.set()
        return slot.owner

    async def receive(self, state: str, timeout_seconds: float) -> Callback | None:
        slot = self._slots.get(state)
        if slot is None:
            return None
        with anyio.move_on_after(timeout_seconds):
            await slot.delivered.wait()
        return slot.callback

    async def report(self, state: str, outcome: Outcome) -> None:
        slot = self._slots.get(state)
        if slot is not None:
            slot.outcome = outcome
            slot.reported.set()

    async def outcome(self, state: str, timeout_seconds: float) -> Outcome | None:
        slot = self._slots.get(state)
        if slot is None:
            return None
        with anyio.move_on_after(timeout_seconds):
            await slot.reported.wait()
        return slot.outcome

    async def forget(self, state: str) -> None:
        self._slots.pop(state, None)


class RedisInbox:
    """An inbox every replica shares, in Redis; answers for sign-ins of this replica skip Redis altogether.

    Keys hold a hash of ``state`` (never the value itself) and expire on their own.
    """

    def __init__(self, redis: Redis, prefix: str = "mcp-assistant:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._local = LocalInbox()

    async def expect(self, state: str, owner: CallbackOwner, ttl_seconds: float) -> None:
        await self._local.expect(state, owner, ttl_seconds)
        try:
            await self._redis.set(self._key("owner", state), json.dumps(asdict(owner)), ex=int(ttl_seconds) + 1)
        except RedisError as exc:
            logger.warning("Redis is unavailable (%s): this sign-in can only finish on this replica", exc)

    async def deliver(self, user_id: str, callback: Callback) -> CallbackOwner:
        if self._local.knows(callback.state):
            return await self._local.deliver(user_id, callback)
        owner_key = self._key("owner", callback.state)
        try:
            raw = await self._redis.get(owner_key)
            owner = CallbackOwner(**json.loads(raw)) if raw is not None else None
            # DEL answers 1 to one caller only: the first delivery takes the sign-in, a replayed one finds nothing.
            if owner is None or owner.user_id != user_id or await self._redis.delete(owner_key) != 1:
                raise AuthorizationRequestNotFound("this sign-in")
            key = self._key("callback", callback.state)
            await self._redis.rpush(key, json.dumps(asdict(callback)))
            await self._redis.expire(key, OUTCOME_TTL_SECONDS)
        except RedisError as exc:
            logger.warning("Redis is unavailable (%s); a sign-in answer could not be handed over", exc)
            raise AuthorizationRequestNotFound("this sign-in") from exc
        return owner

    async def receive(self, state: str, timeout_seconds: float) -> Callback | None:
        # The browser may come back through this replica or another one: wait for both.
        found: list[Callback] = []
        async with anyio.create_task_group() as group:

            async def here() -> None:
                callback = await self._local.receive(state, timeout_seconds)
                if callback is not None:
                    found.append(callback)
                group.cancel_scope.cancel()

            async def elsewhere() -> None:
                raw = await self._pop(self._key("callback", state), timeout_seconds)
                if raw is not None:
                    found.append(Callback(**json.loads(raw)))
                group.cancel_scope.cancel()

            group.start_soon(here)
            group.start_soon(elsewhere)
        return found[0] if found else None

    async def report(self, state: str, outcome: Outcome) -> None:
        await self._local.report(state, outcome)
        key = self._key("outcome", state)
        try:
            await self._redis.rpush(key, json.dumps(asdict(outcome)))
            await self._redis.expire(key, OUTCOME_TTL_SECONDS)
        except RedisError as exc:
            logger.warning("Redis is unavailable (%s); the sign-in's outcome stays on this replica", exc)

    async def outcome(self, state: str, timeout_seconds: float) -> Outcome | None:
        if self._local.knows(state):  # delivered here, so it is reported here
            return await self._local.outcome(state, timeout_seconds)
        raw = await self._pop(self._key("outcome", state), timeout_seconds)
        return Outcome(**json.loads(raw)) if raw is not None else None

    async def forget(self, state: str) -> None:
        await self._local.forget(state)
        try:
            await self._redis.delete(self._key("owner", state), self._key("callback", state))
        except RedisError as exc:
            logger.warning("Redis is unavailable (%s); a finished sign-in's keys will expire on their own", exc)

    async def _pop(self, key: str, timeout_seconds: float) -> str | None:
        """The first value pushed to the list ``key`` within the timeout, in short blocking pops."""
        with anyio.move_on_after(timeout_seconds):
            while True:
                try:
                    popped = await self._redis.blpop([key], timeout=_POLL_SECONDS)
                except RedisError as exc:
                    logger.warning("Redis is unavailable (%s) while waiting for a sign-in", exc)
                    await anyio.sleep(_POLL_SECONDS)
                    continue
                if popped is not None:
                    value = popped[1]
                    return value.decode() if isinstance(value, bytes) else str(value)
        return None

    def _key(self, kind: str, state: str) -> str:
        return f"{self._prefix}oauth:{kind}:{hashlib.sha256(state.encode()).hexdigest()}"
