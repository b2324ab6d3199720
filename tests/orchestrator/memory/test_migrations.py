import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from orchestrator.memory.db import create_engine
from orchestrator.memory.migrate import (
    MIGRATION_LOCK_ID,
    current_revision,
    downgrade_database,
    head_revision,
    upgrade_database,
)
from orchestrator.memory.models import Base
from tests.orchestrator.memory.support import Databases, connect_to_postgres

REPO_ROOT = Path(__file__).resolve().parents[3]
MIGRATE_SCRIPT = REPO_ROOT / "scripts" / "migrate.py"
SCRIPT_TIMEOUT_SECONDS = 60
STORE_TABLES = {
    "users",
    "conversations",
    "messages",
    "mcp_servers",
    "tool_approvals",
    "mcp_oauth_grants",
    "mcp_oauth_clients",
    "token_usage",
    "api_keys",
    "tool_call_approvals",
    "tool_call_grants",
    "tool_policies",
    "tool_call_audit",
    "turns",
}


async def table_names(database_url: str) -> set[str]:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def schema_differences(database_url: str) -> list[object]:
    def compare(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def run_migrate_script(*args: str, cwd: Path, database_url: str | None) -> str:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(MIGRATE_SCRIPT),
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(SCRIPT_TIMEOUT_SECONDS):
        output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_migrations_create_every_table_in_an_empty_database(empty_database_url: str) -> None:
    await upgrade_database(empty_database_url)

    assert await table_names(empty_database_url) == {*STORE_TABLES, "alembic_version"}
    assert await current_revision(empty_database_url) == head_revision()


async def test_upgrading_an_up_to_date_database_changes_nothing(empty_database_url: str) -> None:
    await upgrade_database(empty_database_url)
    await upgrade_database(empty_database_url)

    assert await current_revision(empty_database_url) == head_revision()


async def test_the_migrated_schema_matches_the_models(migrated_database_url: str) -> None:
    assert await schema_differences(migrated_database_url) == []


async def test_downgrading_to_base_drops_every_table(empty_database_url: str) -> None:
    await upgrade_database(empty_database_url)

    await downgrade_database(empty_database_url, "base")

    assert await table_names(empty_database_url) == {"alembic_version"}
    assert await current_revision(empty_database_url) is None


async def test_a_database_never_migrated_has_no_revision(empty_database_url: str) -> None:
    assert await current_revision(empty_database_url) is None


async def test_the_migrate_script_upgrades_from_any_directory(empty_database_url: str, tmp_path: Path) -> None:
    await run_migrate_script("upgrade", cwd=tmp_path, database_url=empty_database_url)
    output = await run_migrate_script("current", cwd=tmp_path, database_url=empty_database_url)

    assert f"current:  {head_revision()}" in output
    assert await table_names(empty_database_url) >= STORE_TABLES


async def test_concurrent_upgrades_in_one_process_all_succeed(empty_database_url: str) -> None:
    async with asyncio.TaskGroup() as group:
        for _ in range(3):
            group.create_task(upgrade_database(empty_database_url))

    assert await current_revision(empty_database_url) == head_revision()
    assert await schema_differences(empty_database_url) == []


@pytest.fixture
async def empty_postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    admin = await connect_to_postgres()
    databases = Databases("postgresql", tmp_path, admin)
    try:
        yield await databases.create()
    finally:
        await databases.drop_all()
        await admin.dispose()


@pytest.mark.postgres
async def test_replicas_starting_together_on_postgresql_all_migrate(empty_postgres_url: str, tmp_path: Path) -> None:
    async with asyncio.TaskGroup() as group:
        for _ in range(3):
            group.create_task(run_migrate_script("upgrade", cwd=tmp_path, database_url=empty_postgres_url))

    assert await current_revision(empty_postgres_url) == head_revision()
    assert await schema_differences(empty_postgres_url) == []


async def test_the_migrate_script_defaults_to_a_sqlite_file_under_data(tmp_path: Path) -> None:
    await run_migrate_script("upgrade", cwd=tmp_path, database_url=None)

    assert (tmp_path / "data" / "assistant.db").exists()


@pytest.mark.postgres
async def test_a_postgresql_upgrade_waits_for_the_migration_lock(empty_postgres_url: str) -> None:
    engine = create_engine(empty_postgres_url, pool_size=1, max_overflow=0).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as holder:
            # New sessions give up on a lock after 100 ms, so a waiting upgrade fails instead of hanging.
            database = make_url(empty_postgres_url).database
            await holder.execute(text(f"ALTER DATABASE \"{database}\" SET lock_timeout = '100ms'"))
            await holder.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})

            with pytest.raises(DBAPIError):
                await upgrade_database(empty_postgres_url)
            assert await table_names(empty_postgres_url) == set()

            await holder.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            await upgrade_database(empty_postgres_url)
    finally:
        await engine.dispose()

    assert await current_revision(empty_postgres_url) == head_revision()
