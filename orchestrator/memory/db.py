"""The async engine factory for the conversation store: SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from orchestrator.errors import ConfigurationError

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"

# Plain scheme -> the async driver we run it with.
_DRIVER_FOR_SCHEME = {
    "sqlite": SQLITE_DRIVER,
    SQLITE_DRIVER: SQLITE_DRIVER,
    "postgres": POSTGRES_DRIVER,
    "postgresql": POSTGRES_DRIVER,
    POSTGRES_DRIVER: POSTGRES_DRIVER,
}

IDLE_PING_SECONDS = 5.0

_SQLITE_PRAGMAS = (
    # WAL lets readers run while one writer commits; NORMAL is durable across app crashes in WAL mode.
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    # Concurrent writers wait for the lock instead of failing at once with "database is locked".
    "PRAGMA busy_timeout=5000",
)


def parse_database_url(database_url: str) -> URL:
    """Parse ``database_url`` and point it at the async driver we use.

    ``sqlite:///`` becomes ``sqlite+aiosqlite:///``; ``postgresql://`` and ``postgres://`` become
    ``postgresql+asyncpg://``.

    Raises:
        ConfigurationError: the URL cannot be parsed or names a database we do not support.
    """
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigurationError([f"DATABASE_URL {redact_url(database_url)!r} is not a valid database URL"]) from None
    driver = _DRIVER_FOR_SCHEME.get(url.drivername)
    if driver is None:
        raise ConfigurationError(
            [
                f"DATABASE_URL scheme {url.drivername!r} is not supported: use sqlite+aiosqlite:///path/to/file.db "
                "or postgresql+asyncpg://user:password@host/dbname"
            ]
        )
    return url.set(drivername=driver)


def redact_url(url: str | URL) -> str:
    """The URL with its password hidden, for logs and error messages."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Not a URL we can parse: show only the scheme, since a password could be anywhere in it.
        scheme, separator, _ = url.partition("://")
        return f"{scheme}://***" if separator else "***"


def create_engine(
    database_url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_pre_ping: bool = True,
    echo: bool = False,
) -> AsyncEngine:
    """Create the async engine for ``database_url``.

    SQLite: the database file's directory is created, and every connection runs in WAL mode with foreign keys on
    and a 5 s busy timeout. PostgreSQL: a pool of ``pool_size`` connections plus ``max_overflow``, checked with a
    ping when taken from the pool after sitting idle (``pool_pre_ping``; see ``_ping_idle_connections``).

    Raises:
        ConfigurationError: the URL is invalid or not SQLite/PostgreSQL.
    """
    url = parse_database_url(database_url)
    if url.drivername == SQLITE_DRIVER:
        return _create_sqlite_engine(url, pool_size=pool_size, max_overflow=max_overflow, echo=echo)
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow, echo=echo)
    if pool_pre_ping:
        _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Ping a pooled connection before use only when it sat idle for a while.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout, which costs three round trips with asyncpg on the hot
    path of every request. A connection that was used a moment ago is alive; one idle for longer than
    ``IDLE_PING_SECONDS`` may have been cut by a database restart or a proxy, and is pinged (and replaced if dead).
    """
    dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error

    def remember_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at: float | None = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except dbapi_error as exc:
            raise DisconnectionError("pooled connection is dead") from exc

    event.listen(engine.sync_engine.pool, "checkin", remember_checkin)
    event.listen(engine.sync_engine.pool, "checkout", ping_if_idle)


def _create_sqlite_engine(url: URL, *, pool_size: int, max_overflow: int, echo: bool) -> AsyncEngine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    if in_memory:
        # Each connection to ":memory:" is a separate empty database: share one connection.
        engine = create_async_engine(url, poolclass=StaticPool, echo=echo)
    else:
        if not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow, echo=echo)
    event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    return engine


def _set_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()
