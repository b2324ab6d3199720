"""Alembic environment for the conversation store.

Two ways in:

* ``orchestrator.memory.migrate`` (start-up, ``scripts/migrate.py``) opens the connection with the service's own
  engine factory and hands it over in ``config.attributes["connection"]``;
* the ``alembic`` CLI with ``orchestrator/alembic.ini`` (for writing new revisions): the URL comes from
  ``DATABASE_URL``.

On PostgreSQL every run holds a transaction-scoped advisory lock, so replicas that start together migrate one
after the other: the first upgrades, the others then find the schema at head and do nothing.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from orchestrator.memory.db import create_engine
from orchestrator.memory.migrate import DEFAULT_DATABASE_URL, MIGRATION_LOCK_ID
from orchestrator.memory.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Taken before alembic looks at the version table; released when the caller commits.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: later revisions rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


if context.is_offline_mode():
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    given: Connection | None = config.attributes.get("connection")
    if given is not None:
        run_migrations(given)
    else:
        if config.config_file_name is not None:
            fileConfig(config.config_file_name, disable_existing_loggers=False)
        asyncio.run(run_with_own_engine(database_url()))
