"""The orchestrator's Redis client: optional in development, shared by everything that needs Redis.

The client is created without contacting Redis, so a Redis that is down at start-up delays nothing: each user of
the client (rate limits, the message bus, locks) has its own documented fallback and recovers by itself once Redis
answers again (see docs/operations.md).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.memory.db import redact_url

logger = logging.getLogger(__name__)

HEALTH_CHECK_INTERVAL_SECONDS = 15
"""An idle connection is pinged before use after this long, so a Redis restart is noticed on the next command."""


def create_redis(url: str, *, timeout_seconds: float) -> Redis:
    """A client for ``url`` whose every wait is bounded by ``timeout_seconds``; it connects on first use.

    A command that fails on a dropped connection is retried once on a new one, which is what a Redis restart looks
    like from here.
    """
    return Redis.from_url(  # pyright: ignore[reportUnknownMemberType] - untyped **kwargs
        url,
        socket_connect_timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        health_check_interval=HEALTH_CHECK_INTERVAL_SECONDS,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        decode_responses=False,
    )


async def redis_status(redis: Redis | None, *, timeout_seconds: float = 2.0) -> dict[str, Any]:
    """``{"status": "up", "latency_ms": ...}``, ``{"status": "down", "error": ...}`` or ``not configured``."""
    if redis is None:
        return {"status": "not configured"}
    started = time.perf_counter()
    try:
        with anyio.fail_after(timeout_seconds):
            await redis.ping()  # pyright: ignore[reportUnknownMemberType] - redis-py types ping as Awaitable | bool
    except (RedisError, OSError, TimeoutError) as exc:
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def describe_redis(url: str) -> str:
    """The URL with its password hidden, for logs."""
    return redact_url(url)
