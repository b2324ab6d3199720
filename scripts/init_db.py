"""Prepare the conversation database: wait for its server, create the database if it is missing, migrate it.

Usage (DATABASE_URL defaults to sqlite+aiosqlite:///./data/assistant.db):

    python scripts/init_db.py                 # wait up to 60 s for the server, create, migrate to the newest revision
    python scripts/init_db.py --wait 180      # wait longer (a database starting in the same deployment)
    python scripts/init_db.py --no-create     # the database must exist already (no CREATE DATABASE right needed)

The Helm chart's migrations Job and docker compose run it before the orchestrator starts. It is safe to run again
and from several places at once: creating an existing database is skipped, and migrations take an advisory lock.
Exit status: 0 done, 1 the server did not answer in time or a step failed, 2 bad settings.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from orchestrator.errors import ConfigurationError
from orchestrator.memory.db import POSTGRES_DRIVER, parse_database_url, redact_url
from orchestrator.memory.migrate import DEFAULT_DATABASE_URL, head_revision, upgrade_database

logger = logging.getLogger("init_db")

RETRY_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 5.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="init_db.py",
        description="Wait for the database server named by DATABASE_URL, create the database if it is missing, "
        "and migrate it to the newest revision.",
    )
    parser.add_argument(
        "--wait", type=float, default=60.0, metavar="SECONDS", help="how long to wait for the server (default: 60)"
    )
    parser.add_argument(
        "--no-create", action="store_true", help="do not create the database when it is missing (PostgreSQL)"
    )
    return parser.parse_args(argv)


def maintenance_engine(url: URL) -> AsyncEngine:
    """An engine on the server's ``postgres`` database, outside transactions (CREATE DATABASE needs that)."""
    return create_async_engine(
        url.set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
    )


async def wait_for_server(engine: AsyncEngine, seconds: float) -> None:
    """Return once PostgreSQL accepts a connection.

    Raises:
        TimeoutError: it did not within ``seconds``.
        DBAPIError: it answered but refused us (a wrong password, say): waiting longer would not help.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return
        except (OSError, TimeoutError, OperationalError) as exc:
            if _refused(exc):
                raise
            if time.monotonic() + RETRY_SECONDS > deadline:
                raise TimeoutError(f"{redact_url(engine.url)} did not accept connections within {seconds:g}s") from exc
            logger.info("waiting for %s (%s)", redact_url(engine.url), type(exc).__name__)
            await asyncio.sleep(RETRY_SECONDS)


def _refused(exc: BaseException) -> bool:
    """An authentication failure or a missing role: the server is up and said no."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("28")


async def create_database(engine: AsyncEngine, name: str) -> bool:
    """Create the database ``name`` unless it exists; returns whether it was created."""
    async with engine.connect() as connection:
        exists = await connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name})
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await connection.execute(text(f"CREATE DATABASE {quoted}"))
        except ProgrammingError as exc:
            if getattr(getattr(exc, "orig", None), "sqlstate", None) == "42P04":
                return False  # created meanwhile by another instance
            raise
        return True


async def run(args: argparse.Namespace, database_url: str) -> None:
    url = parse_database_url(database_url)
    if url.drivername == POSTGRES_DRIVER:
        engine = maintenance_engine(url)
        try:
            await wait_for_server(engine, args.wait)
            if not args.no_create and url.database and await create_database(engine, url.database):
                logger.info("created database %s", url.database)
        finally:
            await engine.dispose()
    await upgrade_database(database_url)
    logger.info("database %s is at revision %s", redact_url(url), head_revision())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        asyncio.run(run(args, database_url))
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (TimeoutError, OSError, DBAPIError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
