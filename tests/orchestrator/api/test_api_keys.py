"""``/api/api-keys``: made and revoked with the user's own sign-in, listed without secrets, usable on ``/api``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.orchestrator.openai_api.conftest import endpoint_settings, key_owner
from tests.support.service import Service, running_service


@pytest.fixture(scope="module")
async def secured(tmp_path_factory: pytest.TempPathFactory, openai_server: FakeOpenAIServer) -> AsyncGenerator[Service]:
    async with running_service(endpoint_settings(tmp_path_factory.mktemp("keys"), openai_server, {})) as running:
        yield running


async def test_a_new_key_is_shown_once_then_listed_without_its_secret(secured: Service) -> None:
    owner = await key_owner(secured.client)

    [listed] = (await secured.client.get("/api/api-keys", headers=owner.headers)).json()

    assert set(listed) == {"id", "name", "prefix", "created_at", "last_used_at"}
    assert owner.key.startswith(listed["prefix"])
    assert listed["prefix"] != owner.key
    assert owner.key not in str(listed)


async def test_a_key_acts_as_its_user_on_the_api_but_cannot_manage_keys(secured: Service) -> None:
    owner = await key_owner(secured.client)
    with_key = {"Authorization": f"Bearer {owner.key}"}
    created = await secured.client.post("/api/conversations", headers=owner.headers)

    listed = await secured.client.get("/api/conversations", headers=with_key)
    me = await secured.client.get("/api/me", headers=with_key)
    refused = await secured.client.post("/api/api-keys", json={"name": "more"}, headers=with_key)

    assert [conversation["id"] for conversation in listed.json()] == [created.json()["id"]]
    assert me.json()["id"] == owner.id
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")


async def test_another_users_key_cannot_be_revoked_and_stays_valid(secured: Service) -> None:
    alice = await key_owner(secured.client)
    bob = await key_owner(secured.client)
    [alices] = (await secured.client.get("/api/api-keys", headers=alice.headers)).json()

    for key_id in (alices["id"], str(uuid.uuid4()), "not-a-key-id"):
        response = await secured.client.delete(f"/api/api-keys/{key_id}", headers=bob.headers)
        assert (response.status_code, response.json()["code"]) == (404, "not_found")

    still = await secured.client.get("/api/conversations", headers={"Authorization": f"Bearer {alice.key}"})
    assert still.status_code == 200


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 101}, {"name": "ok", "scope": "admin"}])
async def test_a_key_needs_a_reasonable_name(secured: Service, body: dict[str, str]) -> None:
    owner = await key_owner(secured.client)

    response = await secured.client.post("/api/api-keys", json=body, headers=owner.headers)

    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
