"""A real nginx with the production configuration, between an HTTPS client and two stub upstreams."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.nginx.stubs import StubServer, frontend_pages, orchestrator_api
from tests.support.nginx import NginxInstance, running_nginx


@pytest.fixture
def frontend() -> Iterator[StubServer]:
    with StubServer(frontend_pages) as server:
        yield server


@pytest.fixture
def orchestrator() -> Iterator[StubServer]:
    with StubServer(orchestrator_api) as server:
        yield server


@pytest.fixture
async def nginx(frontend: StubServer, orchestrator: StubServer, tmp_path: Path) -> AsyncGenerator[NginxInstance]:
    async with running_nginx(frontend.address, orchestrator.address, tmp_path=tmp_path) as instance:
        yield instance


@pytest.fixture
async def client(nginx: NginxInstance) -> AsyncGenerator[httpx.AsyncClient]:
    async with https_client(nginx) as client:
        yield client


def https_client(nginx: NginxInstance) -> httpx.AsyncClient:
    """A client of nginx's HTTPS port that trusts the instance's own self-signed certificate."""
    return httpx.AsyncClient(base_url=nginx.https_url, verify=nginx.ssl_context(), timeout=10)
