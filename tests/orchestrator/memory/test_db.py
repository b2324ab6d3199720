from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.pool import AsyncAdaptedQueuePool

from orchestrator.errors import ConfigurationError
from orchestrator.memory.db import (
    Database,
    PostgresDatabase,
    create_engine,
    open_database,
    parse_database_url,
    redact_url,
)
from orchestrator.memory.models import Base, User
from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import NewMessage, UserIdentity
from tests.orchestrator.memory.support import POSTGRES_URL

SQLITE_PRAGMAS = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
EXPECTED_PRAGMAS = {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}


class Boom(Exception):
    pass


def pragmas(connection: Connection) -> dict[str, object]:
    return {name: connection.execute(text(f"PRAGMA {name}")).scalar_one() for name in SQLITE_PRAGMAS}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///./data/a.db", "sqlite+aiosqlite:///./data/a.db"),
        ("sqlite+aiosqlite:////abs/a.db", "sqlite+aiosqlite:////abs/a.db"),
        ("postgresql://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        ("postgres://u:p@db:6543/app", "postgresql+asyncpg://u:p@db:6543/app"),
        ("postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
    ],
)
def test_plain_urls_are_pointed_at_the_async_drivers(given: str, expected: str) -> None:
    assert parse_database_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("url", ["mysql://u:p@db/app", "postgresql+psycopg2://u@db/app", "not a url"])
def test_unsupported_urls_are_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        create_engine(url)
    with pytest.raises(ConfigurationError):
        open_database(url)

    assert len(raised.value.problems) == 1


@pytest.mark.parametrize("url", ["postgresql://app:s3cret@db/app", "mysql://app:s3cret@db/app", "::s3cret::"])
def test_redacted_urls_never_show_the_password(url: str) -> None:
    assert "s3cret" not in redact_url(url)


async def test_a_sqlite_engine_creates_its_directory_and_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "store.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        async with engine.connect() as connection:
            found = await connection.run_sync(pragmas)
    finally:
        await engine.dispose()

    assert path.exists()
    assert found == EXPECTED_PRAGMAS


async def test_a_sqlite_database_creates_its_directory_and_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "store.db"
    database = open_database(f"sqlite+aiosqlite:///{path}")
    try:
        found = await database.run(pragmas)
    finally:
        await database.dispose()

    assert path.exists()
    assert found == EXPECTED_PRAGMAS


async def test_a_postgresql_engine_uses_the_pool_it_is_given() -> None:
    engine = create_engine("postgres://app@db.invalid/app", pool_size=3, max_overflow=4)
    try:
        assert engine.url.drivername == "postgresql+asyncpg"
        assert isinstance(engine.pool, AsyncAdaptedQueuePool)
        assert engine.pool.size() == 3
    finally:
        await engine.dispose()


async def test_a_postgresql_database_uses_the_pool_it_is_given() -> None:
    database = open_database("postgres://app@db.invalid/app", pool_size=3, max_overflow=4)
    try:
        assert isinstance(database, PostgresDatabase)
        assert database.dialect == "postgresql"
        assert isinstance(database.engine.pool, AsyncAdaptedQueuePool)
        assert database.engine.pool.size() == 3
    finally:
        await database.dispose()


async def test_an_in_memory_sqlite_database_serves_the_store() -> None:
    database = open_database("sqlite://")
    try:
        await database.run(Base.metadata.create_all)
        store = SqlStore(database)
        conversation = await store.create_conversation("someone")

        history, message = await store.start_turn("someone", conversation.id, NewMessage(role="user"), title="t")

        assert history == []
        assert await store.list_messages("someone", conversation.id) == [message]
    finally:
        await database.dispose()


async def test_disposing_twice_is_harmless(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'store.db'}")
    await database.run(pragmas)

    await database.dispose()
    await database.dispose()


# The tests below run on both backends (the ``database`` fixture of conftest.py).


def add_user(connection: Connection, user_id: str) -> None:
    connection.execute(insert(User), {"id": user_id, "created_at": datetime.now(UTC)})


async def user_exists(database: Database, user_id: str) -> bool:
    statement = select(func.count()).select_from(User).where(User.id == user_id)
    return await database.run(lambda connection: connection.execute(statement).scalar_one()) == 1


async def test_a_transaction_that_raises_leaves_nothing_behind(database: Database) -> None:
    user_id = f"rolled-back-{uuid4().hex}"

    def add_then_fail(connection: Connection) -> None:
        add_user(connection, user_id)
        raise Boom

    with pytest.raises(Boom):
        await database.run_in_transaction(add_then_fail)

    assert not await user_exists(database, user_id)
    await database.run_in_transaction(lambda connection: add_user(connection, user_id))
    assert await user_exists(database, user_id)


async def test_outside_a_transaction_each_statement_stands_alone(database: Database) -> None:
    user_id = f"autocommitted-{uuid4().hex}"

    def add_then_fail(connection: Connection) -> None:
        add_user(connection, user_id)
        raise Boom

    with pytest.raises(Boom):
        await database.run(add_then_fail)

    assert await user_exists(database, user_id)


async def test_an_in_memory_sqlite_engine_is_shared_by_every_connection() -> None:
    engine = create_engine("sqlite+aiosqlite://")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_relaxed_postgresql_writes_do_not_wait_for_the_disk_and_others_do() -> None:
    database = open_database(POSTGRES_URL, pool_size=1, max_overflow=0)
    try:
        show = text("SHOW synchronous_commit")
        relaxed = await database.run(lambda connection: connection.execute(show).scalar_one(), relaxed=True)
        durable = await database.run(lambda connection: connection.execute(show).scalar_one())
    finally:
        await database.dispose()

    assert (relaxed, durable) == ("off", "on")


async def test_an_intermediate_step_is_visible_at_once(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)

    [step] = await store.append_messages(user.id, conversation.id, [NewMessage(role="assistant")], durable=False)

    assert await store.list_messages(user.id, conversation.id) == [step]
