"""A migrated database on each backend, shared by the approval store tests (each test uses its own users)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestrator.approvals.store import ApprovalStore
from orchestrator.memory.db import Database, open_database
from orchestrator.memory.migrate import upgrade_database
from orchestrator.memory.store import SqlStore
from tests.orchestrator.memory.support import Databases


@pytest.fixture(scope="module")
async def database(databases: Databases) -> AsyncIterator[Database]:
    url = await databases.create()
    await upgrade_database(url)
    database = open_database(url)
    yield database
    await database.dispose()


@pytest.fixture
def approvals(database: Database) -> ApprovalStore:
    return ApprovalStore(database)


@pytest.fixture
def store(database: Database) -> SqlStore:
    return SqlStore(database)
