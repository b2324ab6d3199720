"""A migrated store with users, the vault over it, and the OAuth-protected test server."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from orchestrator.mcp.oauth.cipher import TokenCipher
from orchestrator.mcp.oauth.grants import GrantVault
from orchestrator.memory.db import open_database
from orchestrator.memory.migrate import upgrade_database
from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import UserIdentity
from tests.fakes.mcp_http import ProtectedTestServer, running_protected_server

KEY = "a-test-key-for-sealing-tokens-0123456789"
USERS = ("alice", "bob")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncGenerator[SqlStore]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'grants.db'}"
    await upgrade_database(url)
    database = open_database(url)
    store = SqlStore(database)
    for user in USERS:
        await store.ensure_user(UserIdentity(id=user))
    yield store
    await database.dispose()


@pytest.fixture
def vault(store: SqlStore) -> GrantVault:
    return GrantVault(store, TokenCipher([KEY]))


@pytest.fixture
async def protected() -> AsyncGenerator[ProtectedTestServer]:
    async with running_protected_server() as server:
        yield server
