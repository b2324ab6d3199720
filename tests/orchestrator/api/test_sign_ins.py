"""Protected MCP servers through the API: signing in inside a conversation, from the servers page, disconnecting."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fakes.mcp_http import ProtectedTestServer, running_protected_server
from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.orchestrator.api.conftest import JWT_SECRET, SettingsFactory, bearer
from tests.support.service import Service, running_service
from tests.support.sign_in import consent, stats
from tests.support.sse import Event
from tests.support.turns import new_conversation, open_stream

ALICE = bearer("alice", name="Alice")
BOB = bearer("bob", name="Bob")
PUBLIC_URL = "https://chat.example.com"


@pytest.fixture
async def protected() -> AsyncGenerator[ProtectedTestServer]:
    async with running_protected_server() as server:
        yield server


@pytest.fixture
async def service(make_settings: SettingsFactory, protected: ProtectedTestServer) -> AsyncGenerator[Service]:
    settings = make_settings(
        {"protected": {"url": protected.url, "oauth": True}},
        jwt_secret_key=JWT_SECRET,
        public_url=PUBLIC_URL,
        interaction_timeout_seconds=30,
    )
    async with running_service(settings) as running:
        yield running


async def come_back(service: Service, location: str, headers: dict[str, str]) -> httpx.Response:
    """The browser's return from the authorization server to our callback (by its path: PUBLIC_URL is not us)."""
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    return await service.client.get(f"{parts.path}?{parts.query}", headers=headers)


def result_page(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{PUBLIC_URL}/oauth/complete"
    return {name: values[0] for name, values in parse_qs(location.query).items()}


async def sign_in_when_asked(
    service: Service, events: Any, headers: dict[str, str], *, account: str
) -> tuple[dict[str, Any], list[Event]]:
    seen: list[Event] = []
    async for event in events:
        seen.append(event)
        if event.event == "interaction_requested":
            page = result_page(
                await come_back(service, await consent(event.data["details"]["url"], account=account), headers)
            )
            assert page == {"server": "protected", "status": "connected"}
            seen.extend([later async for later in events])
            return event.data, seen
    raise AssertionError("nobody was asked to sign in")


def finished_results(events: list[Event]) -> list[str]:
    return [e.data["result"] for e in events if e.event == "tool_call_finished"]


async def test_a_conversation_signs_the_user_in_and_the_turn_goes_on_with_the_servers_tools(
    service: Service, protected: ProtectedTestServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        tool_calls([("protected__sign_in", {})]), tool_calls([("protected__whoami", {})]), text("You are alice.")
    )
    conversation = await new_conversation(service.client, ALICE)

    async with open_stream(service.client, conversation, "who am I on the protected server?", ALICE) as events:
        question, seen = await sign_in_when_asked(service, events, ALICE, account="alice")

    assert question["kind"] == "authorization"
    assert question["server_id"] == "protected"
    assert question["details"]["url"].startswith(protected.base + "/authorize?")
    assert [e.data["outcome"] for e in seen if e.event == "interaction_ended"] == ["accept"]
    sign_in_result, whoami_result = finished_results(seen)
    assert "protected__whoami" in sign_in_result
    assert whoami_result == "signed in as alice"
    offered_after = {tool["function"]["name"] for tool in fake_openai.requests[1]["tools"]}
    assert {"protected__whoami", "protected__echo"} <= offered_after
    assert "protected__sign_in" not in offered_after
    assert seen[-1].data["status"] == "complete"


async def test_each_user_signs_in_for_themselves_and_may_refuse(
    service: Service, protected: ProtectedTestServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(tool_calls([("protected__sign_in", {})]), text("Done."))
    alice_conversation = await new_conversation(service.client, ALICE)
    async with open_stream(service.client, alice_conversation, "who am I?", ALICE) as events:
        await sign_in_when_asked(service, events, ALICE, account="alice")

    bob_tools = (await service.client.get("/api/tools", headers=BOB)).json()
    servers = {
        who: {s["id"]: s for s in (await service.client.get("/api/servers", headers=headers)).json()}["protected"]
        for who, headers in (("alice", ALICE), ("bob", BOB))
    }
    fake_openai.script(tool_calls([("protected__whoami", {})]), text("Fine."))
    bob_conversation = await new_conversation(service.client, BOB)
    seen: list[Event] = []
    async with open_stream(service.client, bob_conversation, "who am I?", BOB) as events:
        async for event in events:
            seen.append(event)
            if event.event == "interaction_requested":
                answer = {"action": "decline"}
                url = f"/api/conversations/{bob_conversation}/interactions/{event.data['id']}"
                assert (await service.client.post(url, json={"action": "accept"}, headers=BOB)).status_code == 422
                assert (await service.client.post(url, json=answer, headers=ALICE)).status_code == 404
                assert (await service.client.post(url, json=answer, headers=BOB)).status_code == 204

    # Bob sees the server's tools (as Alice's connection listed them), but none of Alice's sign-in.
    assert "protected__whoami" in {tool["name"] for tool in bob_tools}
    assert (servers["alice"]["sign_in_required"], servers["alice"]["signed_in"]) == (True, True)
    assert (servers["bob"]["sign_in_required"], servers["bob"]["signed_in"]) == (True, False)
    [bob_result] = finished_results(seen)
    assert "sign in" in bob_result
    assert [e.data["outcome"] for e in seen if e.event == "interaction_ended"] == ["decline"]
    assert len(set((await stats(protected.base))["bearer_tokens"])) == 1  # only Alice's token ever reached it


async def test_the_servers_page_signs_in_and_disconnecting_revokes_the_tokens(
    service: Service, protected: ProtectedTestServer
) -> None:
    started = await service.client.post("/api/servers/protected/authorization", headers=ALICE)
    assert started.status_code == 201, started.text
    page = result_page(await come_back(service, await consent(started.json()["authorization_url"]), ALICE))
    signed_in = await service.client.get("/api/servers", headers=ALICE)

    disconnected = await service.client.delete("/api/servers/protected/authorization", headers=ALICE)
    after = await service.client.get("/api/servers", headers=ALICE)

    assert page == {"server": "protected", "status": "connected"}
    assert signed_in.json()[0]["signed_in"] is True
    assert disconnected.status_code == 204
    assert after.json()[0]["signed_in"] is False
    assert len((await stats(protected.base))["revoked"]) == 2  # the refresh token and the access token


async def test_a_callback_nobody_waits_for_says_the_sign_in_expired(service: Service) -> None:
    response = await service.client.get("/api/oauth/callback?state=made-up&code=x", headers=ALICE)

    assert result_page(response) == {"status": "expired"}


async def test_a_server_that_needs_no_sign_in_cannot_be_signed_in_to(make_settings: SettingsFactory) -> None:
    async with running_service(make_settings()) as service:
        response = await service.client.post("/api/servers/test/authorization")
        missing = await service.client.post("/api/servers/nope/authorization")

    assert (response.status_code, response.json()["code"]) == (409, "conflict")
    assert missing.status_code == 404


async def test_a_server_answering_401_is_taken_as_one_each_user_signs_in_to(
    make_settings: SettingsFactory, protected: ProtectedTestServer
) -> None:
    settings = make_settings({"remote": {"url": protected.url}}, jwt_secret_key=JWT_SECRET, public_url=PUBLIC_URL)
    async with running_service(settings) as service:
        servers = (await service.client.get("/api/servers", headers=ALICE)).json()
        tools = (await service.client.get("/api/tools", headers=ALICE)).json()

    assert [(s["id"], s["status"], s["sign_in_required"], s["signed_in"]) for s in servers] == [
        ("remote", "auth_required", True, False)
    ]
    assert [tool["name"] for tool in tools] == ["remote__sign_in"]
