"""Fixtures shared by the whole suite: one fake OpenAI-compatible server per session."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncGenerator, Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer, echo
from tests.orchestrator.memory.support import Backend, Databases, connect_to_postgres
from tests.support.redis import SHARED_REDIS_URL, delete_prefixed, unique_prefix

# Services started by the tests (in this process or as child processes) share one client address and often one
# user, and some tests poll: generous rate limits keep them apart from the limiter, which runs all the same.
# tests/orchestrator/test_ratelimit.py sets its own limits.
os.environ.setdefault("RATE_LIMIT_PER_MINUTE", "1000000")
os.environ.setdefault("RATE_LIMIT_PER_HOUR", "100000000")


@pytest.fixture(scope="session")
def openai_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(FakeOpenAI()) as server:
        yield server


@pytest.fixture
def fake_openai(openai_server: FakeOpenAIServer) -> FakeOpenAI:
    """The fake model, reset: an empty script, the echo responder and request validation on."""
    fake = openai_server.fake
    fake.reset(responder=echo)
    fake.validate = True
    return fake


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncGenerator[Databases]:
    """Makes empty databases on each backend (tests using it run once per backend); drops them at the end."""
    backend: Backend = request.param
    admin = await connect_to_postgres() if backend == "postgresql" else None
    databases = Databases(backend, tmp_path_factory.mktemp(backend), admin)
    try:
        yield databases
    finally:
        await databases.drop_all()
        if admin is not None:
            await admin.dispose()


@pytest.fixture
async def redis_prefix() -> AsyncGenerator[str]:
    """A key prefix of the test's own on the shared Redis; its keys are deleted afterwards (never a flush)."""
    prefix = unique_prefix()
    yield prefix
    await delete_prefixed(SHARED_REDIS_URL, prefix)


def _postgres_reachable() -> bool:
    url = make_url(os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=2):
            return True
    except OSError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ALLOW_SKIP_POSTGRES=1 (never in CI) and no PostgreSQL server, skip the tests that need one."""
    if os.environ.get("ALLOW_SKIP_POSTGRES") != "1" or os.environ.get("CI") or _postgres_reachable():
        return
    skip = pytest.mark.skip(reason="PostgreSQL is unreachable and ALLOW_SKIP_POSTGRES=1")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
