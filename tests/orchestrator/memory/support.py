"""Test databases on both backends, and a clock for deterministic timestamps."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Generator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from uuid import uuid4

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.memory.db import create_engine, parse_database_url, redact_url

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
        if os.environ.get("ALLOW_SKIP_POSTGRES") == "1" and not os.environ.get("CI"):
            pytest.skip(reason)
        pytest.fail(f"{reason}; set TEST_POSTGRES_URL, or ALLOW_SKIP_POSTGRES=1 to skip the PostgreSQL tests")
    return admin


class TickingClock:
    """A clock that moves ``step`` forward on every reading, so records order deterministically without sleeps."""

    def __init__(self, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


@contextmanager
def counting_statements(engine: Engine) -> Generator[list[str]]:
    """Collects the SQL of the statements ``engine`` sends while the block runs, leaving out BEGIN and COMMIT.

    Those are sent differently by each driver (SQLite's BEGIN IMMEDIATE as a statement, asyncpg's out of sight).
    """
    statements: list[str] = []

    def record(*args: Any) -> None:
        statement: str = args[2]  # (connection, cursor, statement, ...)
        if not statement.startswith("BEGIN"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
