"""The message bus between replicas: in-process, and over the real Redis (shared, and a private one restarted)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio

from orchestrator.cluster.bus import LocalBus, LocalHub, Message, MessageBus, RedisBus
from orchestrator.cluster.redis import create_redis
from tests.support.redis import SHARED_REDIS_URL, private_redis

WAIT_SECONDS = 10.0


class Inbox:
    """What one replica received on a channel, with a way to wait for the next message."""

    def __init__(self, bus: MessageBus, channel: str) -> None:
        self.messages: list[Message] = []
        self._arrived = anyio.Event()
        bus.subscribe(channel, self._receive)

    async def _receive(self, message: Message) -> None:
        self.messages.append(message)
        self._arrived.set()

    async def next(self) -> Message:
        with anyio.fail_after(WAIT_SECONDS):
            while not self.messages:
                await self._arrived.wait()
                self._arrived = anyio.Event()
        return self.messages.pop(0)


@asynccontextmanager
async def redis_buses(url: str, prefix: str, count: int) -> AsyncGenerator[list[RedisBus]]:
    async with AsyncExitStack() as stack:
        buses: list[RedisBus] = []
        for _ in range(count):
            client = create_redis(url, timeout_seconds=1.0)
            stack.push_async_callback(client.aclose)
            buses.append(await stack.enter_async_context(RedisBus(client, prefix, backoff_max=0.5)))
        yield buses


async def wait_connected(*buses: RedisBus) -> None:
    with anyio.fail_after(WAIT_SECONDS):
        for bus in buses:
            await bus.connected_event.wait()


async def publish_until(bus: RedisBus, message: Message, *, heard: int) -> None:
    """Publish ``message`` until ``heard`` replicas hear it (the others reconnect in their own time)."""
    with anyio.fail_after(WAIT_SECONDS):
        while True:
            if await bus.publish("servers", message) == heard:
                return
            await anyio.sleep(0.05)


async def test_local_buses_on_one_hub_hear_each_other_but_not_themselves() -> None:
    hub = LocalHub()
    async with LocalBus(hub) as first, LocalBus(hub) as second, LocalBus() as alone:
        heard_by_first, heard_by_second = Inbox(first, "news"), Inbox(second, "news")

        assert await first.publish("news", {"n": 1}) == 1
        assert await alone.publish("news", {"n": 2}) == 0

        assert await heard_by_second.next() == {"n": 1}
        assert heard_by_first.messages == []


async def test_a_message_published_over_redis_reaches_the_other_replicas_only(redis_prefix: str) -> None:
    async with redis_buses(SHARED_REDIS_URL, redis_prefix, 3) as (first, second, third):
        await wait_connected(first, second, third)
        inboxes = [Inbox(bus, "servers") for bus in (first, second, third)]

        heard = await first.publish("servers", {"change": "registrations", "server_id": "docs"})

        assert heard == 2
        for inbox in inboxes[1:]:
            message = await inbox.next()
            assert (message["change"], message["server_id"]) == ("registrations", "docs")
        assert inboxes[0].messages == []


async def test_deployments_with_other_prefixes_never_meet(redis_prefix: str) -> None:
    async with (
        redis_buses(SHARED_REDIS_URL, redis_prefix, 1) as (ours,),
        redis_buses(SHARED_REDIS_URL, redis_prefix + "other:", 1) as (theirs,),
    ):
        await wait_connected(ours, theirs)
        Inbox(theirs, "servers")

        assert await ours.publish("servers", {"change": "tools"}) == 0


async def test_a_faulty_handler_does_not_stop_the_bus(redis_prefix: str) -> None:
    async with redis_buses(SHARED_REDIS_URL, redis_prefix, 2) as (first, second):
        await wait_connected(first, second)

        async def explode(_message: Message) -> None:
            raise RuntimeError("boom")

        second.subscribe("turns", explode)
        inbox = Inbox(second, "turns")

        await first.publish("turns", {"n": 1})
        await first.publish("turns", {"n": 2})

        assert [(await inbox.next())["n"], (await inbox.next())["n"]] == [1, 2]


async def test_a_redis_restart_mid_run_loses_nothing_but_the_messages_sent_while_it_was_down(tmp_path: Path) -> None:
    async with private_redis(tmp_path) as redis, redis_buses(redis.url, "restart:", 2) as (first, second):
        await wait_connected(first, second)
        resyncs = 0
        resynced = anyio.Event()

        async def count_resync() -> None:
            nonlocal resyncs
            resyncs += 1
            resynced.set()

        second.on_resync(count_resync)
        inbox = Inbox(second, "servers")
        assert await first.publish("servers", {"n": 1}) == 1
        assert (await inbox.next())["n"] == 1

        redis.stop()
        # While Redis is down, publishing says nobody heard it instead of raising.
        await publish_until(first, {"n": 2}, heard=0)
        await redis.start()

        # Each replica subscribes again by itself, and asks its handlers to catch up on what they missed.
        with anyio.fail_after(WAIT_SECONDS):
            await resynced.wait()
        await wait_connected(first, second)
        await publish_until(first, {"n": 3}, heard=1)
        assert (await inbox.next())["n"] == 3
        assert resyncs >= 1


async def test_a_bus_whose_redis_never_answers_publishes_to_nobody_without_raising(tmp_path: Path) -> None:
    async with private_redis(tmp_path) as redis:
        url = redis.url
    async with redis_buses(url, "nowhere:", 1) as (bus,):
        assert await bus.publish("servers", {"change": "tools"}) == 0
        assert not bus.connected
