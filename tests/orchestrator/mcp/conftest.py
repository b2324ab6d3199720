from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.mcp_http import HttpTestServer, running_http_server


@pytest.fixture(scope="module")
async def streamable_http_server() -> AsyncIterator[HttpTestServer]:
    async with running_http_server("streamable-http", name="over-http") as server:
        yield server


@pytest.fixture(scope="module")
async def sse_server() -> AsyncIterator[HttpTestServer]:
    async with running_http_server("sse", name="over-sse") as server:
        yield server
