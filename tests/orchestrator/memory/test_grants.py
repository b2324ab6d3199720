from dataclasses import replace
from datetime import UTC, datetime, timedelta

from orchestrator.memory.grants import StoredClient, StoredGrant
from orchestrator.memory.store import SqlStore
from tests.orchestrator.memory.conftest import new_user


def grant(
    user_id: str, server_id: str = "github", *, issuer: str = "https://as.example", sealed: str = "s1"
) -> StoredGrant:
    return StoredGrant(
        user_id=user_id,
        server_id=server_id,
        issuer=issuer,
        sealed=sealed,
        expires_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=1),
        scope="repo",
        token_endpoint="https://as.example/token",
        revocation_endpoint="https://as.example/revoke",
        resource="https://mcp.example/mcp",
        client_id="client-1",
        token_endpoint_auth_method="client_secret_basic",
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def test_a_grant_is_kept_per_user_and_server_and_replaced_per_issuer(store: SqlStore) -> None:
    alice = await new_user(store, "alice")
    bob = await new_user(store, "bob")
    await store.put_grant(grant(alice.id, sealed="first"))
    await store.put_grant(grant(alice.id, sealed="second"))

    stored = await store.get_grant(alice.id, "github")

    assert stored is not None
    assert stored.sealed == "second"
    assert await store.get_grant(bob.id, "github") is None
    assert await store.get_grant(alice.id, "slack") is None
    assert await store.granted_servers(alice.id) == ["github"]
    assert await store.granted_servers(bob.id) == []


async def test_the_newest_grant_wins_when_the_authorization_server_changed(store: SqlStore) -> None:
    alice = await new_user(store, "alice")
    old = grant(alice.id, issuer="https://old.example", sealed="old")
    new = grant(alice.id, issuer="https://new.example", sealed="new")
    await store.put_grant(old)
    await store.put_grant(replace(new, updated_at=new.updated_at + timedelta(minutes=5)))

    stored = await store.get_grant(alice.id, "github")

    assert stored is not None
    assert (stored.issuer, stored.sealed) == ("https://new.example", "new")


async def test_deleting_returns_every_grant_of_the_user_on_that_server_only(store: SqlStore) -> None:
    alice = await new_user(store, "alice")
    bob = await new_user(store, "bob")
    await store.put_grant(grant(alice.id, issuer="https://a.example"))
    await store.put_grant(grant(alice.id, issuer="https://b.example"))
    await store.put_grant(grant(bob.id))

    deleted = await store.delete_grants(alice.id, "github")

    assert sorted(g.issuer for g in deleted) == ["https://a.example", "https://b.example"]
    assert await store.get_grant(alice.id, "github") is None
    assert await store.get_grant(bob.id, "github") is not None


async def test_a_client_registration_is_shared_by_server_and_replaced(store: SqlStore) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    await store.put_client(StoredClient("github", "https://as.example", "one", now))
    await store.put_client(StoredClient("github", "https://other.example", "two", now))

    client = await store.get_client("github")

    assert client is not None
    assert (client.issuer, client.sealed) == ("https://other.example", "two")
    assert await store.get_client("slack") is None
