from datetime import UTC, datetime
from uuid import uuid4

import pytest

from orchestrator.errors import Conflict, ServerNotFound
from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import ServerRegistration


def new_server_id() -> str:
    return f"srv-{uuid4().hex[:12]}"


async def test_a_registration_is_stored_with_every_field(store: SqlStore) -> None:
    sent = ServerRegistration(
        id=new_server_id(),
        transport="sse",
        url="https://mcp.example.com/sse",
        headers={"Authorization": "Bearer t0ken", "X-Tenant": "acme"},
        tool_timeout_seconds=12.5,
        created_by="admin-sub",
        created_at=datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC),
        send_user_id=True,
        use_service_token=True,
    )

    added = await store.add_registration(sent)

    assert added == sent
    assert sent in await store.list_registrations()


async def test_a_registration_without_a_creation_time_gets_one(store: SqlStore) -> None:
    added = await store.add_registration(
        ServerRegistration(id=new_server_id(), transport="streamable-http", url="http://notes:8000/mcp")
    )

    assert added.created_at is not None
    assert added in await store.list_registrations()


async def test_registrations_list_by_id(store: SqlStore) -> None:
    ids = [new_server_id() for _ in range(3)]
    for server_id in ids:
        await store.add_registration(ServerRegistration(id=server_id, transport="sse", url="http://x/sse"))

    listed = [r.id for r in await store.list_registrations() if r.id in ids]

    assert listed == sorted(ids)


async def test_registering_a_taken_id_is_a_conflict(store: SqlStore) -> None:
    first = await store.add_registration(
        ServerRegistration(id=new_server_id(), transport="sse", url="http://first/sse")
    )

    with pytest.raises(Conflict):
        await store.add_registration(ServerRegistration(id=first.id, transport="sse", url="http://second/sse"))

    assert [r.url for r in await store.list_registrations() if r.id == first.id] == ["http://first/sse"]


async def test_a_removed_registration_is_gone(store: SqlStore) -> None:
    added = await store.add_registration(ServerRegistration(id=new_server_id(), transport="sse", url="http://x/sse"))

    await store.remove_registration(added.id)

    assert added.id not in [r.id for r in await store.list_registrations()]


async def test_removing_an_unknown_registration_is_not_found(store: SqlStore) -> None:
    with pytest.raises(ServerNotFound):
        await store.remove_registration(new_server_id())


async def test_ping_answers_when_the_database_is_up(store: SqlStore) -> None:
    await store.ping()
