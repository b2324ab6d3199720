"""Connecting to the conversation store's database: SQLite or PostgreSQL.

Two ways in. ``open_database`` gives the store a ``Database`` that runs plain sync operations over a SQLAlchemy
``Connection``: on PostgreSQL through the asyncpg engine's greenlet bridge, on SQLite on one dedicated thread with
a sync pysqlite connection (aiosqlite costs a thread hop per DBAPI call, about 1 ms per operation).
``create_engine`` gives the async engine that migrations, tests and scripts use directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool, StaticPool
from sqlalchemy.util import greenlet_spawn

from orchestrator.errors import ConfigurationError
from orchestrator.memory.worker import WorkerThread

SQLITE_DRIVER = "sqlite+aiosqlite"
SQLITE_SYNC_DRIVER = "sqlite+pysqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"

T = TypeVar("T")

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
    server_settings: dict[str, str] | None = None,
) -> AsyncEngine:
    """Create the async engine for ``database_url``: migrations, scripts, tests (the store uses ``open_database``).

    SQLite: the database file's directory is created, and every connection runs in WAL mode with foreign keys on
    and a 5 s busy timeout. PostgreSQL: a pool of ``pool_size`` connections plus ``max_overflow``, checked with a
    ping when taken from the pool after sitting idle (``pool_pre_ping``; see ``_ping_idle_connections``).

    Raises:
        ConfigurationError: the URL is invalid or not SQLite/PostgreSQL.
    """
    url = parse_database_url(database_url)
    if url.drivername == SQLITE_DRIVER:
        return _create_sqlite_engine(url, pool_size=pool_size, max_overflow=max_overflow, echo=echo)
    connect_args = {"server_settings": server_settings} if server_settings else {}
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        echo=echo,
        connect_args=connect_args,
        hide_parameters=True,  # errors never carry users' messages or tool output into the logs
    )
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
    if _sqlite_in_memory(url):
        # Each connection to ":memory:" is a separate empty database: share one connection.
        engine = create_async_engine(url, poolclass=StaticPool, echo=echo, hide_parameters=True)
    else:
        _make_sqlite_directory(url)
        engine = create_async_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, echo=echo, hide_parameters=True
        )
    event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    return engine


def _sqlite_in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _make_sqlite_directory(url: URL) -> None:
    database = url.database or ""
    if not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _set_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


# --- the store's database ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """Connections of the store's pools: kept open (``size``), in use, open beyond the size, most allowed."""

    backend: Literal["sqlite", "postgresql"]
    size: int
    checked_out: int
    overflow: int
    capacity: int


class Database(Protocol):
    """Runs the store's sync operations, each on a ``Connection`` of its own for its duration.

    An operation must not commit, roll back or begin: ``run`` executes each statement on its own (autocommit),
    ``run_in_transaction`` wraps the whole operation in one transaction that commits when it returns and rolls
    back when it raises.
    """

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]: ...

    @property
    def sync_engine(self) -> Engine:
        """The engine whose connections operations receive; for event listeners (tests count statements)."""
        ...

    async def run(self, operation: Callable[[Connection], T], *, relaxed: bool = False) -> T:
        """Run ``operation`` in autocommit mode. Raises whatever ``operation`` or the driver raises.

        ``relaxed``: the commit may return before it is flushed to disk (PostgreSQL ``synchronous_commit=off``).
        It is visible at once and survives a crash of this process; only a crash of the database server within
        a fraction of a second can lose it, never corrupt anything, and the next normal commit flushes it too.
        """
        ...

    async def run_in_transaction(self, operation: Callable[[Connection], T]) -> T:
        """Run ``operation`` in one write transaction. Raises whatever ``operation`` or the driver raises."""
        ...

    async def dispose(self) -> None:
        """Close every connection; operations submitted before still finish."""
        ...

    def pool_status(self) -> PoolStatus: ...


def open_database(database_url: str, *, pool_size: int = 5, max_overflow: int = 10, echo: bool = False) -> Database:
    """The ``Database`` for ``database_url``; ``dispose`` it when done.

    SQLite: one connection (same PRAGMAs as ``create_engine``) on one dedicated thread, so the pool settings do
    not apply. PostgreSQL: the ``create_engine`` pool of ``pool_size`` plus ``max_overflow`` connections.

    Raises:
        ConfigurationError: the URL is invalid or not SQLite/PostgreSQL.
    """
    url = parse_database_url(database_url)
    if url.drivername == SQLITE_DRIVER:
        return SqliteDatabase(url.set(drivername=SQLITE_SYNC_DRIVER), echo=echo)
    relaxed_size = max(1, pool_size // 2)
    return PostgresDatabase(
        create_engine(database_url, pool_size=pool_size, max_overflow=max_overflow, echo=echo),
        relaxed=create_engine(
            database_url,
            pool_size=relaxed_size,
            max_overflow=max_overflow,
            echo=echo,
            server_settings={"synchronous_commit": "off"},
        ),
        capacity=pool_size + relaxed_size + 2 * max_overflow,
    )


class PostgresDatabase:
    """Operations run on the asyncpg engine's sync face, inside SQLAlchemy's greenlet bridge.

    This is what ``async with engine.begin() as c: await c.run_sync(operation)`` does, in one greenlet switch
    per operation instead of one for each of checkout, begin, run, commit and close (about 100 µs less a call).
    """

    def __init__(self, engine: AsyncEngine, *, relaxed: AsyncEngine | None = None, capacity: int | None = None) -> None:
        self.engine = engine
        self._capacity = capacity
        self._relaxed_engine = relaxed
        # Shares the engine's pool; a single statement is atomic on its own, so it needs no BEGIN/COMMIT.
        self._autocommit = engine.sync_engine.execution_options(isolation_level="AUTOCOMMIT")
        # A second pool whose sessions commit without waiting for the disk (see ``Database.run``).
        self._relaxed = (relaxed or engine).sync_engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def dialect(self) -> Literal["postgresql"]:
        return "postgresql"

    @property
    def sync_engine(self) -> Engine:
        return self.engine.sync_engine

    async def run(self, operation: Callable[[Connection], T], *, relaxed: bool = False) -> T:
        return await greenlet_spawn(lambda: self._run(operation, relaxed=relaxed))

    async def run_in_transaction(self, operation: Callable[[Connection], T]) -> T:
        return await greenlet_spawn(lambda: self._run_in_transaction(operation))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._relaxed_engine is not None:
            await self._relaxed_engine.dispose()

    def pool_status(self) -> PoolStatus:
        """Both pools together (the second one commits without waiting for the disk)."""
        pools = [self.engine.sync_engine.pool]
        if self._relaxed_engine is not None:
            pools.append(self._relaxed_engine.sync_engine.pool)
        size = checked_out = overflow = 0
        for pool in pools:
            if isinstance(pool, QueuePool):
                size += pool.size()
                checked_out += pool.checkedout()
                overflow += max(0, pool.overflow())
        return PoolStatus("postgresql", size, checked_out, overflow, self._capacity or size)

    def _run(self, operation: Callable[[Connection], T], *, relaxed: bool) -> T:
        with (self._relaxed if relaxed else self._autocommit).connect() as connection:
            return operation(connection)

    def _run_in_transaction(self, operation: Callable[[Connection], T]) -> T:
        with self.engine.sync_engine.begin() as connection:
            return operation(connection)


class SqliteDatabase:
    """Operations run one at a time on a dedicated thread, over one pysqlite connection kept open.

    One writer at a time is what SQLite allows anyway; queueing in the process replaces lock waits (``busy_timeout``
    sleeps of up to tens of milliseconds) with a FIFO, and an operation is one thread hop. The driver runs in
    autocommit mode (pysqlite's own transaction handling would BEGIN lazily, before the first write only);
    a transaction is an explicit ``BEGIN IMMEDIATE``, which takes the write lock up front so a transaction never
    fails half-way on a lock upgrade held by another process.
    """

    def __init__(self, url: URL, *, echo: bool = False) -> None:
        if not _sqlite_in_memory(url):
            _make_sqlite_directory(url)
        # StaticPool: one connection, opened, used and closed on the worker thread (so pysqlite's same-thread
        # check holds); an in-memory database lives as long as it does.
        self._engine = sqlalchemy.create_engine(url, poolclass=StaticPool, echo=echo, hide_parameters=True)
        event.listen(self._engine, "connect", _prepare_sqlite_connection)
        self._worker = WorkerThread(name=f"sqlite-store-{Path(url.database or 'memory').name}")
        self._connection: Connection | None = None  # opened and used on the worker thread only
        self._disposed = False
        self._busy = False

    @property
    def dialect(self) -> Literal["sqlite"]:
        return "sqlite"

    @property
    def sync_engine(self) -> Engine:
        return self._engine

    async def run(self, operation: Callable[[Connection], T], *, relaxed: bool = False) -> T:
        # SQLite in WAL mode with synchronous=NORMAL never waits for the disk at commit; nothing to relax.
        return await self._worker.run(lambda: self._call(operation, transaction=False))

    async def run_in_transaction(self, operation: Callable[[Connection], T]) -> T:
        return await self._worker.run(lambda: self._call(operation, transaction=True))

    async def dispose(self) -> None:
        if self._disposed:
            return
        self._disposed = True
        await self._worker.run(self._close)
        await self._worker.stop()

    def pool_status(self) -> PoolStatus:
        """One connection, in use while an operation runs."""
        return PoolStatus("sqlite", 1, 1 if self._busy else 0, 0, 1)

    def _call(self, operation: Callable[[Connection], T], *, transaction: bool) -> T:
        if self._connection is None:
            self._connection = self._engine.connect()
        # SQLAlchemy's transaction only brackets the operation: with the driver in autocommit mode its "begin"
        # sends nothing, and its commit or rollback ends the BEGIN IMMEDIATE below, if any (a no-op otherwise).
        self._busy = True
        try:
            with self._connection.begin():
                if transaction:
                    self._connection.exec_driver_sql("BEGIN IMMEDIATE")
                return operation(self._connection)
        finally:
            self._busy = False

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()


def _prepare_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    # Autocommit in the driver: SqliteDatabase sends BEGIN itself (see its docstring).
    dbapi_connection.isolation_level = None
    _set_sqlite_pragmas(dbapi_connection, connection_record)
