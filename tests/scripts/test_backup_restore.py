"""scripts/init_db.py, backup.sh and restore.sh against the real PostgreSQL and a fake Qdrant over HTTP."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.memory.db import create_engine, parse_database_url
from tests.fakes.qdrant_snapshots import FakeQdrant, running_qdrant
from tests.orchestrator.memory.support import POSTGRES_URL, connect_to_postgres
from tests.support.process import REPO_ROOT

pytestmark = pytest.mark.postgres

SCRIPTS = REPO_ROOT / "scripts"


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """The URL of a database that does not exist yet (init_db.py creates it); dropped afterwards."""
    admin = await connect_to_postgres()
    name = f"backup_test_{uuid4().hex[:12]}"
    try:
        yield parse_database_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def run(command: list[str], **environment: str) -> tuple[int, str]:
    result = await anyio.run_process(command, env={**os.environ, **environment}, check=False, cwd=REPO_ROOT)
    return result.returncode, (result.stdout + result.stderr).decode()


def backups_in(folder: Path, *, hidden: bool = False) -> list[Path]:
    return sorted(folder.glob(".*" if hidden else "assistant-*")) + (
        sorted(folder.glob("assistant-*")) if hidden else []
    )


async def users(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.scalars(text("SELECT id FROM users ORDER BY id"))).all())


async def test_init_db_creates_and_migrates_a_database_and_can_run_again(database_url: str) -> None:
    first = await run([sys.executable, str(SCRIPTS / "init_db.py"), "--wait", "10"], DATABASE_URL=database_url)
    second = await run([sys.executable, str(SCRIPTS / "init_db.py"), "--wait", "10"], DATABASE_URL=database_url)

    assert first[0] == 0, first[1]
    assert "created database" in first[1]
    assert second[0] == 0, second[1]
    assert "created database" not in second[1]


async def test_init_db_gives_up_on_a_server_that_never_answers() -> None:
    unreachable = "postgresql://postgres@127.0.0.1:9/nothing"

    code, output = await run([sys.executable, str(SCRIPTS / "init_db.py"), "--wait", "1"], DATABASE_URL=unreachable)

    assert code == 1
    assert "did not accept connections" in output


async def test_a_backup_restores_the_database_and_the_qdrant_collections(database_url: str, tmp_path: Path) -> None:
    code, output = await run([sys.executable, str(SCRIPTS / "init_db.py")], DATABASE_URL=database_url)
    assert code == 0, output
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    qdrant = FakeQdrant(collections={"memories": b"points as they were", "documents": b"documents as they were"})
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO users (id, created_at) VALUES ('github:1', now()), ('google:2', now())")
            )
        async with running_qdrant(qdrant) as qdrant_url:
            environment = {
                "DATABASE_URL": database_url,
                "VECTOR_DB_URL": qdrant_url,
                "VECTOR_DB_API_KEY": qdrant.api_key,
            }
            code, output = await run([str(SCRIPTS / "backup.sh"), "--output", str(tmp_path)], **environment)
            assert code == 0, output
            [backup] = backups_in(tmp_path)

            # Everything changes after the backup ...
            async with engine.begin() as connection:
                await connection.execute(text("DELETE FROM users WHERE id = 'github:1'"))
                await connection.execute(text("INSERT INTO users (id, created_at) VALUES ('local:3', now())"))
            qdrant.collections = {"memories": b"points changed since"}

            code, output = await run([str(SCRIPTS / "restore.sh"), "--from", str(backup), "--yes"], **environment)
            assert code == 0, output
            restored = await users(engine)
    finally:
        await engine.dispose()

    assert restored == ["github:1", "google:2"]
    assert qdrant.collections == {"memories": b"points as they were", "documents": b"documents as they were"}
    assert sorted(qdrant.uploads) == [("documents", "snapshot"), ("memories", "snapshot")]
    assert qdrant.snapshots == {}  # the snapshots made for the backup were removed from the server
    assert sorted(path.name for path in (backup / "qdrant").iterdir()) == ["documents.snapshot", "memories.snapshot"]
    manifest = (backup / "manifest.txt").read_text()
    assert "./database.dump" in manifest
    assert "pg_dump (PostgreSQL) " in manifest


@pytest.fixture
async def backed_up(database_url: str, tmp_path: Path) -> Path:
    """A migrated database with one user, backed up (database only); the backup's folder."""
    code, output = await run([sys.executable, str(SCRIPTS / "init_db.py")], DATABASE_URL=database_url)
    assert code == 0, output
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO users (id, created_at) VALUES ('github:1', now())"))
    finally:
        await engine.dispose()
    code, output = await run(
        [str(SCRIPTS / "backup.sh"), "--output", str(tmp_path / "backups"), "--no-qdrant"], DATABASE_URL=database_url
    )
    assert code == 0, output
    [backup] = backups_in(tmp_path / "backups")
    return backup


async def test_restore_refuses_a_damaged_backup_and_leaves_the_database_alone(
    database_url: str, backed_up: Path
) -> None:
    dump = backed_up / "database.dump"
    dump.write_bytes(dump.read_bytes()[:-10])
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO users (id, created_at) VALUES ('local:after', now())"))

        code, output = await run(
            [str(SCRIPTS / "restore.sh"), "--from", str(backed_up), "--no-qdrant", "--yes"], DATABASE_URL=database_url
        )
        left = await users(engine)
    finally:
        await engine.dispose()

    assert code == 1
    assert "does not match its manifest" in output
    assert left == ["github:1", "local:after"]


async def test_restore_asks_for_confirmation(database_url: str, backed_up: Path) -> None:
    code, output = await run([str(SCRIPTS / "restore.sh"), "--from", str(backed_up)], DATABASE_URL=database_url)

    assert code == 2
    assert "pass --yes" in output


async def test_a_failed_backup_leaves_no_folder_behind(tmp_path: Path) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:9/nothing"

    code, _ = await run(
        [str(SCRIPTS / "backup.sh"), "--output", str(tmp_path), "--no-qdrant"], DATABASE_URL=unreachable
    )

    assert code == 1
    assert backups_in(tmp_path, hidden=True) == []


async def test_sqlite_databases_are_pointed_elsewhere(tmp_path: Path) -> None:
    code, output = await run(
        [str(SCRIPTS / "backup.sh"), "--output", str(tmp_path)], DATABASE_URL=f"sqlite:///{tmp_path}/a.db"
    )

    assert code == 1
    assert "SQLite" in output
