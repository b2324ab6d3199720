"""Fixtures that run every store test on SQLite and on PostgreSQL.

SQLite databases live in a temporary directory. PostgreSQL databases are created on the server named by
TEST_POSTGRES_URL with unique names (so parallel runs never collide) and dropped at the end of the session. An
unreachable PostgreSQL fails the run unless ALLOW_SKIP_POSTGRES=1, which skips those tests instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from orchestrator.memory.db import Database, open_database
from orchestrator.memory.migrate import upgrade_database
from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import UserIdentity
from tests.orchestrator.memory.support import Databases, TickingClock


@pytest.fixture
async def empty_database_url(databases: Databases) -> str:
    """A database no migration has touched."""
    return await databases.create()


@pytest.fixture(scope="session")
async def migrated_database_url(databases: Databases) -> str:
    """One migrated database per backend, shared by the session's store tests (each test uses its own users)."""
    url = await databases.create()
    await upgrade_database(url)
    return url


@pytest.fixture(scope="session")
async def database(migrated_database_url: str) -> AsyncIterator[Database]:
    # Enough PostgreSQL connections for the concurrency tests to actually run side by side.
    database = open_database(migrated_database_url, pool_size=5, max_overflow=20)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def store(database: Database, clock: TickingClock) -> SqlStore:
    return SqlStore(database, clock=clock)


async def new_user(store: SqlStore, name: str) -> UserIdentity:
    user = UserIdentity(id=f"{name}-{uuid4().hex}", name=name.title(), email=f"{name}@example.com")
    await store.ensure_user(user)
    return user


@pytest.fixture
async def user(store: SqlStore) -> UserIdentity:
    return await new_user(store, "alice")


@pytest.fixture
async def other_user(store: SqlStore) -> UserIdentity:
    return await new_user(store, "mallory")
