"""Conversations over HTTP on SQLite and PostgreSQL: CRUD, one user never sees another's data, bad input is a 4xx."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

import pytest

from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.orchestrator.api.conftest import JWT_SECRET, SettingsFactory, bearer
from tests.support.service import Service, running_service
from tests.support.turns import json_turn, new_conversation, open_stream, stored_messages

ALICE = bearer("alice", name="Alice")
BOB = bearer("bob", name="Bob")


@pytest.fixture
async def secured(make_settings: SettingsFactory, database_url: str) -> AsyncGenerator[Service]:
    """A service that requires JWTs, on each database backend."""
    settings = make_settings(jwt_secret_key=JWT_SECRET, database_url=database_url, admin_users=["alice"])
    async with running_service(settings) as running:
        yield running


async def test_conversations_are_created_listed_renamed_and_deleted(secured: Service) -> None:
    client = secured.client
    created = await client.post("/api/conversations", json={"title": "Trip"}, headers=ALICE)
    assert created.status_code == 201
    conversation = created.json()
    assert set(conversation) == {"id", "title", "created_at", "updated_at"}

    renamed = await client.patch(f"/api/conversations/{conversation['id']}", json={"title": "Lisbon"}, headers=ALICE)
    listed = await client.get("/api/conversations", headers=ALICE)
    deleted = await client.delete(f"/api/conversations/{conversation['id']}", headers=ALICE)
    after = await client.get(f"/api/conversations/{conversation['id']}", headers=ALICE)

    assert renamed.json()["title"] == "Lisbon"
    assert [c["id"] for c in listed.json()] == [conversation["id"]]
    assert (deleted.status_code, after.status_code) == (204, 404)


async def test_another_users_conversation_is_not_found_on_every_route(
    secured: Service, fake_openai: FakeOpenAI
) -> None:
    client = secured.client
    fake_openai.script(tool_calls([("test__echo", {"text": "secret"})]), text("Alice's secret is safe."))
    conversation = await new_conversation(client, ALICE)
    await json_turn(client, conversation, "remember my secret", ALICE)
    requests = [
        ("GET", f"/api/conversations/{conversation}", None),
        ("GET", f"/api/conversations/{conversation}/events", None),
        ("PATCH", f"/api/conversations/{conversation}", {"title": "mine now"}),
        ("POST", f"/api/conversations/{conversation}/messages", {"content": "hi"}),
        ("POST", f"/api/conversations/{conversation}/stop", None),
        ("DELETE", f"/api/conversations/{conversation}", None),
    ]

    statuses = [(await client.request(m, url, json=body, headers=BOB)).status_code for m, url, body in requests]

    assert statuses == [404] * len(requests)
    assert (await client.get("/api/conversations", headers=BOB)).json() == []
    assert len(await stored_messages(client, conversation, ALICE)) == 4
    assert (await client.get(f"/api/conversations/{conversation}", headers=ALICE)).json()["title"] != "mine now"


async def test_another_users_conversation_is_not_found_even_while_its_reply_runs(
    secured: Service, fake_openai: FakeOpenAI
) -> None:
    client = secured.client
    fake_openai.script(tool_calls([("test__hang", {})]))
    conversation = await new_conversation(client, ALICE)

    async with open_stream(client, conversation, "wait", ALICE) as events:
        async for event in events:
            if event.event == "tool_call_started":
                post = await client.post(
                    f"/api/conversations/{conversation}/messages", json={"content": "x"}, headers=BOB
                )
                stop = await client.post(f"/api/conversations/{conversation}/stop", headers=BOB)
                follow = await client.get(f"/api/conversations/{conversation}/events", headers=BOB)
                assert (post.status_code, stop.status_code, follow.status_code) == (404, 404, 404)
                assert (await client.post(f"/api/conversations/{conversation}/stop", headers=ALICE)).json()["stopped"]


async def test_conversations_are_searched_by_title_in_any_case_with_wildcards_taken_literally(secured: Service) -> None:
    client = secured.client
    for title in ("Trip to Lisbon", "lisbon food", "100% done", "1000 done", "Porto"):
        await client.post("/api/conversations", json={"title": title}, headers=ALICE)
    await client.post("/api/conversations", json={"title": "Lisbon (Bob's)"}, headers=BOB)

    async def titles(q: str) -> set[str]:
        response = await client.get("/api/conversations", params={"q": q}, headers=ALICE)
        return {c["title"] for c in response.json()}

    assert await titles("LISBON") == {"Trip to Lisbon", "lisbon food"}
    assert await titles("100%") == {"100% done"}
    assert await titles("_") == set()


async def test_the_caller_learns_who_they_are_and_whether_they_are_an_admin(secured: Service) -> None:
    alice = await secured.client.get("/api/me", headers=ALICE)
    bob = await secured.client.get("/api/me", headers=BOB)

    assert alice.json() == {"id": "alice", "name": "Alice", "email": None, "is_admin": True}
    assert bob.json()["is_admin"] is False


async def test_requests_without_a_valid_token_are_refused(secured: Service) -> None:
    missing = await secured.client.get("/api/conversations")
    forged = await secured.client.get("/api/conversations", headers={"Authorization": "Bearer abc.def.ghi"})

    assert (missing.status_code, forged.status_code) == (401, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["code"] == "unauthenticated"


async def test_only_admins_may_add_or_remove_servers(secured: Service) -> None:
    body = {"id": "extra", "url": "http://127.0.0.1:9/mcp"}

    refused = await secured.client.post("/api/servers", json=body, headers=BOB)
    removal = await secured.client.delete("/api/servers/test", headers=BOB)

    assert (refused.status_code, removal.status_code) == (403, 403)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{not json", {"Content-Type": "application/json"}),
        (b'{"content": 42}', {"Content-Type": "application/json"}),
        (b'{"content": ""}', {"Content-Type": "application/json"}),
        (b'{"content": "hi", "extra": 1}', {"Content-Type": "application/json"}),
        (b'{"content": "nul \\u0000 byte"}', {"Content-Type": "application/json"}),
        (b"[]", {"Content-Type": "application/json"}),
        (b"", {"Content-Type": "application/json"}),
        (b"content=hi", {"Content-Type": "application/x-www-form-urlencoded"}),
    ],
)
async def test_malformed_messages_get_a_clear_422(service: Service, body: bytes, headers: dict[str, str]) -> None:
    conversation = await new_conversation(service.client)

    response = await service.client.post(f"/api/conversations/{conversation}/messages", content=body, headers=headers)

    assert response.status_code == 422
    assert response.json()["detail"]
    assert await stored_messages(service.client, conversation) == []


async def test_an_oversized_body_is_refused_with_413(make_settings: SettingsFactory) -> None:
    async with running_service(make_settings(max_request_bytes=4096)) as service:
        conversation = await new_conversation(service.client)

        response = await service.client.post(
            f"/api/conversations/{conversation}/messages", json={"content": "x" * 10_000}
        )
        unknown = await service.client.get("/api/nowhere")

    assert response.status_code == 413
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")


async def test_a_message_longer_than_the_limit_is_refused(make_settings: SettingsFactory) -> None:
    async with running_service(make_settings(max_message_chars=100)) as service:
        conversation = await new_conversation(service.client)

        response = await service.client.post(f"/api/conversations/{conversation}/messages", json={"content": "x" * 101})

    assert (response.status_code, response.json()["code"]) == (422, "invalid_input")


@pytest.mark.parametrize("conversation_id", ["nope", "%00", "00000000-0000-0000-0000-000000000000", "1%27%20OR%201=1"])
async def test_unknown_or_malformed_conversation_ids_are_not_found(service: Service, conversation_id: str) -> None:
    response = await service.client.get(f"/api/conversations/{conversation_id}")

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    "body",
    [{"title": ""}, {"title": "x" * 201}, {"title": None}, {"title": "a\x00b"}, {}],
)
async def test_invalid_titles_are_refused(service: Service, body: dict[str, object]) -> None:
    conversation = await new_conversation(service.client)

    response = await service.client.patch(f"/api/conversations/{conversation}", json=body)

    assert response.status_code == 422


async def test_listing_is_paginated_most_recent_first(service: Service, fake_openai: FakeOpenAI) -> None:
    ids = [await new_conversation(service.client) for _ in range(3)]
    await json_turn(service.client, ids[0], "bump the oldest")

    first_page = (await service.client.get("/api/conversations", params={"limit": 2})).json()
    second_page = (await service.client.get("/api/conversations", params={"limit": 2, "offset": 2})).json()
    bad_limit = await service.client.get("/api/conversations", params={"limit": 0})

    assert [c["id"] for c in first_page] == [ids[0], ids[2]]
    assert [c["id"] for c in second_page] == [ids[1]]
    assert bad_limit.status_code == 422


async def test_the_api_is_described_by_its_openapi_document(service: Service) -> None:
    document = (await service.client.get("/openapi.json")).json()

    assert {"/api/conversations", "/api/conversations/{conversation_id}/messages", "/api/servers"} <= set(
        document["paths"]
    )


async def test_nul_and_lone_surrogates_from_the_model_or_a_tool_are_stored_safely(
    secured: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        tool_calls([("test__echo", {"text": "a\x00b"}), ("test__echo", {"text": "lone \ud800"})]),
        text("done \x00 here \udc00"),
    )
    conversation = await new_conversation(secured.client, ALICE)

    reply = await json_turn(secured.client, conversation, "echo odd bytes", ALICE)

    messages = await stored_messages(secured.client, conversation, ALICE)
    results = {m["tool_call_id"]: m for m in messages if m["role"] == "tool"}
    first, second = (results[call["id"]] for call in messages[1]["tool_calls"])
    assert reply["status"] == "complete"
    # A control character in a tool result is taken out (and flagged) before it gets near the model or the database.
    assert (first["content"], first["is_error"]) == ("ab\n\n[1 invisible character removed]", False)
    assert second["is_error"]
    assert messages[-1]["content"] == "done \ufffd here \ufffd"
    assert secured.state.registry.server("test").status == "healthy"


@pytest.mark.parametrize("content", ["nul \x00 here", "lone \ud800 surrogate"])
async def test_user_text_that_cannot_be_stored_is_refused_with_422(secured: Service, content: str) -> None:
    conversation = await new_conversation(secured.client, ALICE)
    body = json.dumps({"content": content}, ensure_ascii=True)

    response = await secured.client.post(
        f"/api/conversations/{conversation}/messages",
        content=body,
        headers={"Content-Type": "application/json", **ALICE},
    )
    created = await secured.client.post(
        "/api/conversations",
        content=json.dumps({"title": content}),
        headers={"Content-Type": "application/json", **ALICE},
    )

    assert (response.status_code, created.status_code) == (422, 422)
