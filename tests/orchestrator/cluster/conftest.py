"""Redis fixtures: a unique key prefix on the shared server, cleaned up afterwards; the service fixtures of api/."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from tests.orchestrator.api.conftest import make_settings
from tests.support.redis import SHARED_REDIS_URL, delete_prefixed, unique_prefix

__all__ = ["make_settings", "redis_prefix"]


@pytest.fixture
async def redis_prefix() -> AsyncGenerator[str]:
    prefix = unique_prefix()
    yield prefix
    await delete_prefixed(SHARED_REDIS_URL, prefix)
