"""Fixtures that run every store test on SQLite and on PostgreSQL.

SQLite databases live in a temporary directory. PostgreSQL databases are created on the server named by
TEST_POSTGRES_URL with unique names (so parallel runs never collide) and dropped at the end of the session. An
unreachable PostgreSQL fails the run unless ALLOW_SKIP_POSTGRES=1, which skips those tests instead.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from uuid import uuid4

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.memory.db import create_engine, parse_database_url, redact_url
from orchestrator.memory.migrate import upgrade_database
from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import UserIdentity

Backend = Literal["sqlite", "postgresql"]

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
CONNECT_TIMEOUT_SECONDS = 5


class Databases:
    """Makes empty databases of one backend and removes them at the end of the session."""

    def __init__(self, backend: Backend, directory: Path, admin: AsyncEngine | None) -> None:
        self.backend = backend
        self._directory = directory
        self._admin = admin
        self._created: list[str] = []

    async def create(self) -> str:
        """A URL of a new, empty database."""
        name = f"memory_test_{uuid4().hex[:16]}"
        if self._admin is None:
            return f"sqlite+aiosqlite:///{self._directory / name}.db"
        async with self._admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        return parse_database_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        if self._admin is None:
            return
        async with self._admin.connect() as connection:
            for name in self._created:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def connect_to_postgres() -> AsyncEngine:
    """The admin engine (autocommit: CREATE DATABASE cannot run in a transaction); fails or skips if unreachable."""
    admin = create_engine(POSTGRES_URL, pool_size=1, max_overflow=0).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS), admin.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (OSError, TimeoutError, SQLAlchemyError) as error:
        await admin.dispose()
        reason = f"PostgreSQL at {redact_url(POSTGRES_URL)} is unreachable ({error!r})"
        if os.environ.get("ALLOW_SKIP_POSTGRES") == "1":
            pytest.skip(reason)
        pytest.fail(f"{reason}; set TEST_POSTGRES_URL, or ALLOW_SKIP_POSTGRES=1 to skip the PostgreSQL tests")
    return admin


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Databases]:
    backend: Backend = request.param
    admin = await connect_to_postgres() if backend == "postgresql" else None
    databases = Databases(backend, tmp_path_factory.mktemp("memory"), admin)
    try:
        yield databases
    finally:
        await databases.drop_all()
        if admin is not None:
            await admin.dispose()


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
async def engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    # Enough connections for the concurrency tests to actually run side by side.
    engine = create_engine(migrated_database_url, pool_size=5, max_overflow=20)
    yield engine
    await engine.dispose()


class TickingClock:
    """A clock that moves ``step`` forward on every reading, so records order deterministically without sleeps."""

    def __init__(self, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def store(engine: AsyncEngine, clock: TickingClock) -> SqlStore:
    return SqlStore(engine, clock=clock)


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
