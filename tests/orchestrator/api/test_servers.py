"""MCP servers through the API: listing, run-time registration by admins, dead servers, name collisions."""

from __future__ import annotations

import anyio

from tests.fakes.mcp_http import running_http_server
from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.orchestrator.api.conftest import SettingsFactory, stdio_test_server
from tests.support.service import Service, running_service
from tests.support.turns import json_turn, new_conversation


async def wait_for_status(service: Service, server_id: str, status: str) -> None:
    with anyio.fail_after(20):
        while True:
            servers = (await service.client.get("/api/servers")).json()
            if any(s["id"] == server_id and s["status"] == status for s in servers):
                return
            await anyio.sleep(0.05)


async def test_servers_and_their_namespaced_tools_are_listed(service: Service) -> None:
    servers = (await service.client.get("/api/servers")).json()
    tools = (await service.client.get("/api/tools")).json()

    assert [(s["id"], s["transport"], s["source"], s["status"]) for s in servers] == [
        ("test", "stdio", "config", "healthy")
    ]
    assert servers[0]["tool_count"] == len(tools)
    echo = next(t for t in tools if t["tool"] == "echo")
    assert (echo["name"], echo["server_id"], echo["input_schema"]["type"]) == ("test__echo", "test", "object")


async def test_two_servers_with_the_same_tool_name_get_distinct_tools_that_route_correctly(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    servers = {"alpha": stdio_test_server("alpha"), "beta": stdio_test_server("beta")}
    fake_openai.script(tool_calls([("alpha__name", {}), ("beta__name", {})]), text("Both answered."))
    async with running_service(make_settings(servers=servers)) as service:
        conversation = await new_conversation(service.client)

        reply = await json_turn(service.client, conversation, "who are you both?")

    assert {call["name"]: call["result"] for call in reply["tool_calls"]} == {
        "alpha__name": "alpha",
        "beta__name": "beta",
    }


async def test_admins_register_http_servers_at_run_time_and_they_survive_a_restart(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings()
    async with running_http_server("streamable-http", name="remote") as remote:
        async with running_service(settings) as service:
            added = await service.client.post(
                "/api/servers", json={"id": "remote", "url": remote.url, "max_concurrent_calls": 1}
            )
            duplicate = await service.client.post("/api/servers", json={"id": "remote", "url": remote.url})
            await wait_for_status(service, "remote", "healthy")
            fake_openai.script(tool_calls([("remote__name", {})]), text("Remote answered."))
            reply = await json_turn(service.client, await new_conversation(service.client), "remote?")

        async with running_service(settings) as restarted:
            await wait_for_status(restarted, "remote", "healthy")
            # Its limit of one call at once was kept: two read-only calls, which could overlap, run one by one.
            fake_openai.script(tool_calls([("remote__read", {"seconds": 0.3})] * 2), text("Read twice."))
            limited = await json_turn(restarted.client, await new_conversation(restarted.client), "read twice")
            removed = await restarted.client.delete("/api/servers/remote")
            from_config = await restarted.client.delete("/api/servers/test")
            unknown = await restarted.client.delete("/api/servers/nope")
            remaining = [s["id"] for s in (await restarted.client.get("/api/servers")).json()]

    assert (added.status_code, added.json()["source"]) == (201, "runtime")
    assert duplicate.status_code == 409
    assert reply["tool_calls"][0]["result"] == "remote"
    assert [call["result"] for call in limited["tool_calls"]] == ["1", "1"]
    assert (removed.status_code, from_config.status_code, unknown.status_code) == (204, 409, 404)
    assert remaining == ["test"]


async def test_invalid_server_registrations_are_refused(service: Service) -> None:
    bodies = [
        {"id": "bad id!", "url": "http://127.0.0.1:1/mcp"},
        {"id": "ok", "url": "file:///etc/passwd"},
        {"id": "ok", "url": "http://127.0.0.1:1/mcp", "transport": "stdio"},
        {"id": "ok"},
        {"id": "ok", "url": "http://127.0.0.1:1/mcp", "max_concurrent_calls": 0},
    ]

    statuses = [(await service.client.post("/api/servers", json=body)).status_code for body in bodies]

    assert statuses == [422] * len(bodies)


async def test_a_server_that_dies_mid_call_fails_the_call_and_the_turn_goes_on(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(tool_calls([("test__crash", {})]), text("The tool crashed."))
    conversation = await new_conversation(service.client)

    reply = await json_turn(service.client, conversation, "crash it")

    assert reply["status"] == "complete"
    assert reply["tool_calls"][0]["is_error"]
    await wait_for_status(service, "test", "healthy")
