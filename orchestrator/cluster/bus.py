"""Messages between the replicas of the orchestrator: a small publish/subscribe bus.

Every replica subscribes to the channels it cares about and publishes JSON objects to them. Messages are hints,
never the only copy of anything: the database stays the source of truth, so a message lost while Redis was away is
made up for by the ``on_resync`` handlers, which run each time the bus (re)connects.

Two backends implement :class:`MessageBus`:

* :class:`LocalBus`: the replicas of one process (one replica in production; several in tests, joined by a shared
  :class:`LocalHub`). What ``make run`` uses.
* :class:`RedisBus`: Redis pub/sub, for several replicas. A replica never receives its own messages.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Protocol, Self, TypeGuard

import anyio
from anyio.abc import TaskGroup
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from orchestrator.mcp.backoff import Backoff

logger = logging.getLogger(__name__)

Message = Mapping[str, Any]
Handler = Callable[[Message], Awaitable[None]]
ResyncHandler = Callable[[], Awaitable[None]]

_SENDER = "_sender"
_POLL_SECONDS = 1.0


class MessageBus(Protocol):
    """Publish JSON objects to named channels; handlers of the other replicas receive them."""

    @property
    def node_id(self) -> str:
        """This replica's id (unique per process start)."""
        ...

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler`` with every message another replica publishes to ``channel`` (any time, even running).

        Handlers run concurrently in the bus's task group; one that raises is logged and does not stop the bus.
        """
        ...

    def on_resync(self, handler: ResyncHandler) -> None:
        """Call ``handler`` whenever messages may have been missed: after the bus (re)connects."""
        ...

    async def publish(self, channel: str, message: Message) -> int:
        """Send ``message`` to the other replicas; returns how many heard it (0 when Redis is unreachable).

        Never raises for an unreachable backend: the failure is logged once per outage.
        """
        ...


class _Dispatcher:
    """Handlers by channel, run in a task group: what both backends share."""

    def __init__(self) -> None:
        self.node_id = uuid.uuid4().hex
        self._handlers: dict[str, list[Handler]] = {}
        self._resync: list[ResyncHandler] = []
        self._group: TaskGroup | None = None

    def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers.setdefault(channel, []).append(handler)

    def on_resync(self, handler: ResyncHandler) -> None:
        self._resync.append(handler)

    def dispatch(self, channel: str, message: Message) -> None:
        if self._group is None:
            return
        for handler in self._handlers.get(channel, ()):
            self._group.start_soon(self._run, handler, message, name=f"bus-{channel}")

    def resync(self) -> None:
        if self._group is None:
            return
        for handler in self._resync:
            self._group.start_soon(self._run_resync, handler, name="bus-resync")

    async def _run(self, handler: Handler, message: Message) -> None:
        try:
            await handler(message)
        except Exception:  # boundary: one faulty handler must not stop the bus or the others
            logger.exception("a message handler failed")

    async def _run_resync(self, handler: ResyncHandler) -> None:
        try:
            await handler()
        except Exception:  # boundary, as above
            logger.exception("a resync handler failed")


class LocalHub:
    """Joins the :class:`LocalBus` instances of one process, as Redis joins replicas."""

    def __init__(self) -> None:
        self.members: list[LocalBus] = []


class LocalBus(_Dispatcher):
    """The in-process backend: delivers to the other buses on the same :class:`LocalHub` (none by default)."""

    def __init__(self, hub: LocalHub | None = None) -> None:
        super().__init__()
        self._hub = hub or LocalHub()

    async def __aenter__(self) -> Self:
        self._exit = anyio.create_task_group()
        self._group = await self._exit.__aenter__()
        self._hub.members.append(self)
        self.resync()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._hub.members.remove(self)
        assert self._group is not None
        self._group.cancel_scope.cancel()
        self._group = None
        await self._exit.__aexit__(None, None, None)

    async def publish(self, channel: str, message: Message) -> int:
        # A JSON round trip, so handlers get exactly what they would get from Redis.
        delivered = json.loads(json.dumps(dict(message)))
        peers = [member for member in self._hub.members if member is not self]
        for peer in peers:
            peer.dispatch(channel, delivered)
        return len(peers)


class RedisBus(_Dispatcher):
    """The Redis backend: one pattern subscription to ``<prefix>bus:*``, kept up with backoff.

    Args:
        redis: the shared client (its timeouts bound every command).
        prefix: the deployment's key prefix (``REDIS_KEY_PREFIX``), so deployments sharing a Redis never meet.
        backoff_initial: first delay, in seconds, before resubscribing after Redis went away.
        backoff_max: largest delay between attempts.
    """

    def __init__(self, redis: Redis, prefix: str, *, backoff_initial: float = 0.2, backoff_max: float = 5.0) -> None:
        super().__init__()
        self._redis = redis
        self._prefix = f"{prefix}bus:"
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._connected = False
        self._publish_failing = False
        self.connected_event = anyio.Event()
        """Set while subscribed; tests wait on it."""

    @property
    def connected(self) -> bool:
        return self._connected

    async def __aenter__(self) -> Self:
        self._exit = anyio.create_task_group()
        self._group = await self._exit.__aenter__()
        self._group.start_soon(self._listen, name="redis-bus")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._group is not None
        self._group.cancel_scope.cancel()
        self._group = None
        await self._exit.__aexit__(None, None, None)

    async def publish(self, channel: str, message: Message) -> int:
        payload = json.dumps({**message, _SENDER: self.node_id}, separators=(",", ":"))
        try:
            receivers = int(await self._redis.publish(self._prefix + channel, payload))  # pyright: ignore[reportUnknownMemberType]
        except (RedisError, OSError) as exc:
            if not self._publish_failing:
                self._publish_failing = True
                logger.warning("Redis is unreachable; a message to the other replicas was not sent: %s", exc)
            return 0
        if self._publish_failing:
            self._publish_failing = False
            logger.info("Redis is reachable again; messages reach the other replicas")
        # The count includes this replica's own subscription.
        return max(0, receivers - (1 if self._connected else 0))

    async def _listen(self) -> None:
        outage_logged = False
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # pyright: ignore[reportUnknownMemberType]
                try:
                    await pubsub.psubscribe(self._prefix + "*")
                    self._backoff.reset()
                    self._set_connected(True)
                    if outage_logged:
                        logger.info("Redis is reachable again; resynchronising with the other replicas")
                        outage_logged = False
                    self.resync()
                    await self._receive(pubsub)
                finally:
                    self._set_connected(False)
                    with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                        await pubsub.aclose()
            except (RedisError, OSError) as exc:
                if not outage_logged:
                    outage_logged = True
                    logger.warning(
                        "Redis is unreachable; replicas will not hear from each other until it is back: %s", exc
                    )
            await anyio.sleep(self._backoff.next_delay())

    async def _receive(self, pubsub: PubSub) -> None:
        while True:
            raw = await _next_message(pubsub)
            if raw is None:
                continue
            channel = _text(raw.get("channel")).removeprefix(self._prefix)
            try:
                message = json.loads(_text(raw.get("data")))
            except ValueError:
                logger.warning("ignored a message on %s that is not JSON", channel)
                continue
            if not _is_object(message) or message.get(_SENDER) == self.node_id:
                continue
            self.dispatch(channel, message)

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        if connected:
            self.connected_event.set()
        elif self.connected_event.is_set():
            self.connected_event = anyio.Event()


async def _next_message(pubsub: PubSub) -> dict[str, Any] | None:
    raw: object = await pubsub.get_message(  # pyright: ignore[reportUnknownVariableType] - redis-py's union
        ignore_subscribe_messages=True, timeout=_POLL_SECONDS
    )
    return raw if _is_object(raw) else None  # pyright: ignore[reportUnknownArgumentType]


def _is_object(value: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
