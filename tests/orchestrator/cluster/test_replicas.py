"""Two replicas of the orchestrator, one database, the real Redis: what one replica does, the other learns."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.cluster.bus import RedisBus
from tests.fakes.mcp_http import HttpTestServer, running_http_server
from tests.fakes.openai_server import FakeOpenAI, hang, text, tool_calls
from tests.orchestrator.api.conftest import JWT_SECRET, SettingsFactory, bearer
from tests.orchestrator.api.test_tool_approvals import REWRITTEN, names, wait_for_tools
from tests.support.redis import SHARED_REDIS_URL
from tests.support.service import Service, running_service
from tests.support.sse import Event
from tests.support.turns import follow_turn, new_conversation, open_stream, tokens

ADMIN = bearer("alice", name="Alice")
WAIT_SECONDS = 20.0


@pytest.fixture
async def shared_server() -> AsyncGenerator[HttpTestServer]:
    async with running_http_server("streamable-http", name="shared") as server:
        yield server


@pytest.fixture
async def replicas(
    make_settings: SettingsFactory, tmp_path: Path, redis_prefix: str, shared_server: HttpTestServer
) -> AsyncGenerator[tuple[Service, Service]]:
    """Two services on one SQLite file and one Redis prefix, both connected to one HTTP MCP server."""
    settings = make_settings(
        {"shared": {"url": shared_server.url}},
        jwt_secret_key=JWT_SECRET,
        admin_users=["alice"],
        database_url=f"sqlite:///{tmp_path / 'shared.db'}",
        redis_url=SHARED_REDIS_URL,
        redis_key_prefix=redis_prefix,
    )
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(running_service(settings))
        second = await stack.enter_async_context(running_service(settings))
        with anyio.fail_after(WAIT_SECONDS):
            for service in (first, second):
                assert isinstance(service.state.bus, RedisBus)
                await service.state.bus.connected_event.wait()
        yield first, second


async def server_ids(service: Service) -> set[str]:
    servers: list[dict[str, Any]] = (await service.client.get("/api/servers", headers=ADMIN)).json()
    return {server["id"] for server in servers}


async def wait_for_servers(service: Service, expected: set[str]) -> None:
    with anyio.fail_after(WAIT_SECONDS):
        while True:
            if await server_ids(service) == expected:
                return
            await anyio.sleep(0.05)


async def test_a_server_registered_on_one_replica_is_connected_on_the_other_and_removed_with_it(
    replicas: tuple[Service, Service], shared_server: HttpTestServer
) -> None:
    first, second = replicas

    added = await first.client.post(
        "/api/servers", json={"id": "docs", "url": shared_server.url, "transport": "streamable-http"}, headers=ADMIN
    )
    assert added.status_code == 201, added.text

    await wait_for_servers(second, {"shared", "docs"})
    await wait_for_tools(second.client, lambda tools: "docs__echo" in names(tools), headers=ADMIN)

    removed = await first.client.delete("/api/servers/docs", headers=ADMIN)
    assert removed.status_code == 204
    await wait_for_servers(second, {"shared"})


async def test_a_stop_sent_to_another_replica_stops_the_turn_where_it_runs(
    replicas: tuple[Service, Service], fake_openai: FakeOpenAI
) -> None:
    first, second = replicas
    fake_openai.script(hang(30, text("too late")))
    conversation = await new_conversation(first.client, ADMIN)

    async with open_stream(first.client, conversation, "take your time", ADMIN) as events:
        assert (await anext(events)).event == "message_start"
        url = f"/api/conversations/{conversation}"
        posted = await second.client.post(f"{url}/messages", json={"content": "me too"}, headers=ADMIN)
        deleted = await second.client.delete(url, headers=ADMIN)
        stopped = await second.client.post(f"{url}/stop", headers=ADMIN)
        rest = [event async for event in events]

    # The other replica knows the reply runs (the database says so): one reply at a time, whichever replica.
    assert (posted.status_code, deleted.status_code) == (409, 409)
    assert stopped.json() == {"stopped": True}
    assert rest[-1].event == "message_end"
    assert rest[-1].data["status"] == "incomplete"


async def test_a_stop_for_a_conversation_with_no_running_turn_says_so(replicas: tuple[Service, Service]) -> None:
    first, second = replicas
    conversation = await new_conversation(first.client, ADMIN)

    stopped = await second.client.post(f"/api/conversations/{conversation}/stop", headers=ADMIN)

    assert stopped.json() == {"stopped": False}


async def test_a_tool_change_approved_on_one_replica_is_offered_again_on_the_other(
    replicas: tuple[Service, Service],
) -> None:
    first, second = replicas
    await first.state.registry.call_tool("shared__add_tool", {"tool_name": "echo", "description": REWRITTEN})
    for service in (first, second):
        await wait_for_tools(service.client, lambda tools: "shared__echo" not in names(tools), headers=ADMIN)

    approved = await first.client.post("/api/tool-changes/shared/echo/approve", headers=ADMIN)
    assert approved.status_code == 200, approved.text

    tools = await wait_for_tools(second.client, lambda tools: "shared__echo" in names(tools), headers=ADMIN)
    assert next(tool for tool in tools if tool["name"] == "shared__echo")["description"] == REWRITTEN


async def test_a_tool_list_change_seen_by_one_replica_makes_the_other_list_again(
    replicas: tuple[Service, Service],
) -> None:
    first, second = replicas
    await first.state.registry.call_tool("shared__add_tool", {"tool_name": "fresh"})

    await wait_for_tools(second.client, lambda tools: "shared__fresh" in names(tools), headers=ADMIN)


async def test_an_approval_decided_on_one_replica_lets_the_turn_waiting_on_the_other_go_on(
    replicas: tuple[Service, Service], fake_openai: FakeOpenAI
) -> None:
    first, second = replicas
    fake_openai.script(tool_calls([("shared__forget", {"item": "the draft"})]), text("Forgotten."))
    conversation = await new_conversation(first.client, ADMIN)
    seen: list[Event] = []

    with anyio.fail_after(WAIT_SECONDS):
        async with open_stream(first.client, conversation, "forget the draft", ADMIN) as events:
            async for event in events:
                seen.append(event)
                if event.event == "approval_requested":
                    listed = (
                        await second.client.get(f"/api/conversations/{conversation}/approvals", headers=ADMIN)
                    ).json()
                    decided = await second.client.post(
                        f"/api/conversations/{conversation}/approvals/{event.data['id']}",
                        json={"decision": "once"},
                        headers=ADMIN,
                    )
                    assert [approval["id"] for approval in listed] == [event.data["id"]]
                    assert decided.status_code == 200, decided.text

    assert [event.data["result"] for event in seen if event.event == "tool_call_finished"] == ["forgot the draft"]
    assert seen[-1].data["status"] == "complete"


async def test_a_client_that_reconnects_to_another_replica_gets_exactly_the_rest_of_the_answer(
    replicas: tuple[Service, Service], fake_openai: FakeOpenAI
) -> None:
    first, second = replicas
    answer = "Written on one replica, read to the end on the other one."
    fake_openai.script(hang(0.5, then=text(answer, chunk_size=4), after_chunks=4))
    conversation = await new_conversation(first.client, ADMIN)

    before: list[Event] = []
    async with open_stream(first.client, conversation, "answer slowly", ADMIN) as events:
        async for event in events:
            before.append(event)
            if len(tokens(before)) >= 8:
                break
    after = await follow_turn(second.client, conversation, before[-1].id, ADMIN)

    assert tokens(before) + tokens(after) == answer
    assert after[-1].event == "message_end"
    assert (after[-1].data["status"], after[-1].data["content"]) == ("complete", answer)
