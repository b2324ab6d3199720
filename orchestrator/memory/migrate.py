"""Run the Alembic migrations in ``orchestrator/migrations`` from code (start-up, ``scripts/migrate.py``)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from orchestrator.memory.db import create_engine, redact_url

logger = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/assistant.db"

# Any fixed 64-bit number; every process migrating the same PostgreSQL database must use the same one.
MIGRATION_LOCK_ID = 0x6D63_7061_7373_6973  # "mcpassis"

# Alembic keeps the running migration in process-wide globals (``alembic.context``, ``alembic.op``), so two commands
# in one process must not interleave; across processes the PostgreSQL advisory lock in env.py takes over.
_alembic_lock = threading.Lock()

# Found next to the package, not from the working directory, so an installed package migrates too.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    """The Alembic configuration, built in code: the URL travels with the connection, never through a file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade_database(database_url: str) -> None:
    """Bring the database schema to the newest revision.

    Safe to call on every start-up: an up-to-date database costs a few queries, and on PostgreSQL concurrent
    callers take turns on an advisory lock.
    """
    logger.debug("migrating database %s to head", redact_url(database_url))
    await _run(database_url, lambda config: command.upgrade(config, "head"))


async def downgrade_database(database_url: str, revision: str) -> None:
    """Take the schema back to ``revision`` (``base`` drops every table)."""
    logger.info("downgrading database %s to %s", redact_url(database_url), revision)
    await _run(database_url, lambda config: command.downgrade(config, revision))


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None when it has never been migrated."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current_revision)
    finally:
        await engine.dispose()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _run(database_url: str, alembic_command: Callable[[Config], None]) -> None:
    # A worker thread with its own event loop waits for the lock without blocking the caller's loop.
    await asyncio.to_thread(_run_exclusively, database_url, alembic_command)


def _run_exclusively(database_url: str, alembic_command: Callable[[Config], None]) -> None:
    with _alembic_lock:
        asyncio.run(_run_on_new_engine(database_url, alembic_command))


async def _run_on_new_engine(database_url: str, alembic_command: Callable[[Config], None]) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on_connection, alembic_command)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_on_connection(connection: Connection, alembic_command: Callable[[Config], None]) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection  # picked up by migrations/env.py
    alembic_command(config)
