"""API keys in the store, on SQLite and PostgreSQL: only hashes are kept, revocation is final, users stay apart."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from orchestrator.apikeys.keys import KEY_MARKER, PREFIX_CHARS
from orchestrator.apikeys.service import ApiKeys
from orchestrator.apikeys.store import SqlApiKeyStore
from orchestrator.errors import ApiKeyNotFound, AuthenticationFailed, TooManyApiKeys
from orchestrator.memory.db import Database
from orchestrator.memory.models import ApiKey
from orchestrator.memory.store import SqlStore
from tests.orchestrator.memory.conftest import new_user


@pytest.fixture
def keys(database: Database) -> ApiKeys:
    return ApiKeys(SqlApiKeyStore(database), max_per_user=3)


async def stored_rows(database: Database, user_id: str) -> list[tuple[object, ...]]:
    def read(connection: object) -> list[tuple[object, ...]]:
        from sqlalchemy.engine import Connection

        assert isinstance(connection, Connection)
        return [tuple(row) for row in connection.execute(select(ApiKey).where(ApiKey.user_id == user_id))]

    return await database.run(read)


async def test_the_secret_is_shown_once_and_only_its_hash_is_stored(
    store: SqlStore, database: Database, keys: ApiKeys
) -> None:
    alice = await new_user(store, "alice")

    created = await keys.create(alice.id, "laptop")

    assert created.secret.startswith(KEY_MARKER)
    assert len(created.secret) > 40
    assert created.record.prefix == created.secret[:PREFIX_CHARS]
    [row] = await stored_rows(database, alice.id)
    assert all(created.secret not in str(value) for value in row)
    assert hashlib.sha256(created.secret.encode()).hexdigest() in row
    [listed] = await keys.list(alice.id)
    assert (listed.id, listed.name, listed.last_used_at) == (created.record.id, "laptop", None)


async def test_a_key_authenticates_its_user_until_it_is_revoked(store: SqlStore, keys: ApiKeys) -> None:
    alice = await new_user(store, "alice")
    created = await keys.create(alice.id, "ci")

    caller = await keys.authenticate(created.secret)

    assert caller.user == alice
    assert (caller.is_admin, caller.api_key_id) == (False, created.record.id)
    [used] = await keys.list(alice.id)
    assert used.last_used_at is not None
    assert keys.known_owner(created.secret) == alice.id
    await keys.revoke(alice.id, created.record.id)
    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(created.secret)
    assert await keys.list(alice.id) == []
    assert keys.known_owner(created.secret) is None
    with pytest.raises(ApiKeyNotFound):
        await keys.revoke(alice.id, created.record.id)


@pytest.mark.parametrize("change", ["flip-last", "truncate", "not-ours", "empty"])
async def test_anything_but_the_exact_secret_is_refused(store: SqlStore, keys: ApiKeys, change: str) -> None:
    alice = await new_user(store, "alice")
    secret = (await keys.create(alice.id, "ci")).secret
    presented = {
        "flip-last": secret[:-1] + ("A" if secret[-1] != "A" else "B"),
        "truncate": secret[:PREFIX_CHARS],
        "not-ours": "sk-" + secret[len(KEY_MARKER) :],
        "empty": "",
    }[change]

    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(presented)


async def test_users_see_and_revoke_only_their_own_keys(store: SqlStore, keys: ApiKeys) -> None:
    alice = await new_user(store, "alice")
    bob = await new_user(store, "bob")
    alices = await keys.create(alice.id, "alice's")
    bobs = await keys.create(bob.id, "bob's")

    with pytest.raises(ApiKeyNotFound):
        await keys.revoke(bob.id, alices.record.id)

    assert [key.name for key in await keys.list(alice.id)] == ["alice's"]
    assert [key.name for key in await keys.list(bob.id)] == ["bob's"]
    assert (await keys.authenticate(alices.secret)).user.id == alice.id
    assert (await keys.authenticate(bobs.secret)).user.id == bob.id


async def test_a_user_has_at_most_the_limit_of_active_keys(store: SqlStore, keys: ApiKeys) -> None:
    alice = await new_user(store, "alice")
    made = [await keys.create(alice.id, f"key {number}") for number in range(3)]

    with pytest.raises(TooManyApiKeys):
        await keys.create(alice.id, "one too many")
    await keys.revoke(alice.id, made[0].record.id)

    assert (await keys.create(alice.id, "room again")).record.name == "room again"
    assert next(key.name for key in await keys.list(alice.id)) == "room again"
