"""Redis for tests: the shared server (unique key prefixes, never flushed) and private servers to stop and restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.support.service import free_port

SHARED_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START_TIMEOUT_SECONDS = 10.0


def unique_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


async def keys_matching(url: str, pattern: str) -> list[bytes]:
    client = Redis.from_url(url)  # pyright: ignore[reportUnknownMemberType] - untyped **kwargs
    try:
        scan = client.scan_iter(match=pattern, count=500)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        keys: list[bytes] = [key async for key in scan]  # pyright: ignore[reportUnknownVariableType]
        return keys
    finally:
        await client.aclose()


async def delete_prefixed(url: str, prefix: str) -> None:
    """Delete the keys a test made under ``prefix`` (the shared server is never flushed)."""
    keys = await keys_matching(url, f"{prefix}*")
    if not keys:
        return
    client = Redis.from_url(url)  # pyright: ignore[reportUnknownMemberType] - untyped **kwargs
    try:
        await client.delete(*keys)
    finally:
        await client.aclose()


class PrivateRedis:
    """A ``redis-server`` of the test's own, on a free port, that the test may stop and start again in place."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._process = subprocess.Popen(  # noqa: ASYNC220 - a plain child process the test stops at will
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self._directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)  # pyright: ignore[reportUnknownMemberType] - untyped **kwargs
        try:
            with anyio.fail_after(START_TIMEOUT_SECONDS):
                while True:
                    try:
                        if await client.ping():  # pyright: ignore[reportUnknownMemberType, reportGeneralTypeIssues]
                            return
                    except (RedisError, OSError):  # still starting
                        pass
                    await anyio.sleep(0.05)
        finally:
            await client.aclose()

    def stop(self) -> None:
        """Kill the server at once, as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None


@asynccontextmanager
async def private_redis(directory: Path) -> AsyncGenerator[PrivateRedis]:
    server = PrivateRedis(directory)
    await server.start()
    try:
        yield server
    finally:
        server.stop()
