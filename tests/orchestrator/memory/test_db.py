from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.pool import AsyncAdaptedQueuePool

from orchestrator.errors import ConfigurationError
from orchestrator.memory.db import create_engine, parse_database_url, redact_url


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

    assert len(raised.value.problems) == 1


@pytest.mark.parametrize("url", ["postgresql://app:s3cret@db/app", "mysql://app:s3cret@db/app", "::s3cret::"])
def test_redacted_urls_never_show_the_password(url: str) -> None:
    assert "s3cret" not in redact_url(url)


async def test_a_sqlite_engine_creates_its_directory_and_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "store.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()

    assert path.exists()
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}


async def test_a_postgresql_engine_uses_the_pool_it_is_given() -> None:
    engine = create_engine("postgres://app@db.invalid/app", pool_size=3, max_overflow=4)
    try:
        assert engine.url.drivername == "postgresql+asyncpg"
        assert isinstance(engine.pool, AsyncAdaptedQueuePool)
        assert engine.pool.size() == 3
    finally:
        await engine.dispose()


async def test_an_in_memory_sqlite_database_is_shared_by_every_connection() -> None:
    engine = create_engine("sqlite+aiosqlite://")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
    finally:
        await engine.dispose()
