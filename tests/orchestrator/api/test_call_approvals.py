"""Tool calls that need the user's approval: the turn waits, the user decides, the model hears the outcome."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import httpx
import pytest

from orchestrator.approvals.service import DENIED_BY_POLICY, DENIED_BY_USER, TIMED_OUT
from orchestrator.settings import load_settings
from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer, Reply, text, tool_calls
from tests.orchestrator.api.conftest import JWT_SECRET, SettingsFactory, bearer, stdio_test_server
from tests.support.service import Service, running_service
from tests.support.sse import Event
from tests.support.turns import follow_turn, names, new_conversation, open_stream

ALICE = bearer("alice")  # an admin
ARGUMENTS = {"item": 'the "draft" <b>v2</b>\nwith a second line'}


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory, openai_server: FakeOpenAIServer) -> AsyncGenerator[Service]:
    """One service for the tests of this module; each test has users and conversations of its own."""
    folder = tmp_path_factory.mktemp("approvals")
    servers = folder / "servers.json"
    # The servers file asks before ``add`` (a read-only tool, which would otherwise run).
    servers.write_text(
        json.dumps({"mcpServers": {"test": {**stdio_test_server(), "toolPolicy": {"tools": {"add": "ask"}}}}})
    )
    settings = load_settings(
        data_dir=folder / "data",
        openai_api_key=openai_server.api_key,
        openai_base_url=openai_server.base_url,
        openai_model="fake-gpt",
        openai_max_retries=2,
        mcp_config=servers,
        mcp_builtin_servers=False,
        mcp_tool_timeout_seconds=10,
        jwt_secret_key=JWT_SECRET,
        admin_users=["alice"],
        _env_file=None,
    )
    async with running_service(settings) as running:
        yield running


def someone(name: str = "bob") -> tuple[str, dict[str, str]]:
    """A user of the test's own: their id and headers."""
    user_id = f"{name}-{uuid.uuid4().hex[:8]}"
    return user_id, bearer(user_id)


def approval_url(conversation: str, approval_id: str = "") -> str:
    return f"/api/conversations/{conversation}/approvals" + (f"/{approval_id}" if approval_id else "")


async def turn(
    service: Service, conversation: str, headers: dict[str, str], decision: str | None = None
) -> list[Event]:
    """Run a turn to its end; when a call asks for approval, decide it (a turn that asks without ``decision`` fails)."""
    seen: list[Event] = []
    async with open_stream(service.client, conversation, "forget the draft", headers) as events:
        async for event in events:
            seen.append(event)
            if event.event == "approval_requested":
                assert decision is not None, "the call asked for approval"
                decided = await service.client.post(
                    approval_url(conversation, event.data["id"]), json={"decision": decision}, headers=headers
                )
                assert decided.status_code == 200, decided.text
    return seen


def results(events: list[Event]) -> list[str]:
    return [event.data["result"] for event in events if event.event == "tool_call_finished"]


def forget_then(reply: str) -> list[Reply]:
    return [tool_calls([("test__forget", ARGUMENTS)]), text(reply)]


async def test_a_destructive_call_waits_for_the_users_approval_and_runs_once_allowed(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    _, bob = someone()
    fake_openai.script(*forget_then("Forgotten."))
    conversation = await new_conversation(service.client, bob)
    seen: list[Event] = []
    waiting: list[dict[str, Any]] = []
    decided: dict[str, Any] = {}
    async with open_stream(service.client, conversation, "forget the draft", bob) as events:
        async for event in events:
            seen.append(event)
            if event.event == "approval_requested":
                waiting = (await service.client.get(approval_url(conversation), headers=bob)).json()
                await anyio.sleep(1)  # the user takes a moment to decide
                response = await service.client.post(
                    approval_url(conversation, event.data["id"]), json={"decision": "once"}, headers=bob
                )
                decided = response.json()
    left = (await service.client.get(approval_url(conversation), headers=bob)).json()

    [requested] = [event.data for event in seen if event.event == "approval_requested"]
    assert (requested["server_id"], requested["tool"], requested["name"]) == ("test", "forget", "test__forget")
    assert json.loads(requested["arguments"]) == ARGUMENTS
    assert [approval["id"] for approval in waiting] == [requested["id"]]
    assert json.loads(waiting[0]["arguments"]) == ARGUMENTS
    assert (decided["status"], decided["decision"]) == ("approved", "once")
    assert names(seen)[1:5] == ["tool_call_started", "approval_requested", "approval_ended", "tool_call_finished"]
    assert [event.data["decision"] for event in seen if event.event == "approval_ended"] == ["once"]
    assert results(seen) == [f"forgot {ARGUMENTS['item']}"]
    # The call's duration is its run's; the second the user took to decide is not in it.
    [finished] = [event.data for event in seen if event.event == "tool_call_finished"]
    assert finished["duration_ms"] < 1000
    assert left == []


async def test_allowed_once_asks_again_next_time_and_a_denial_tells_the_model(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    _, bob = someone()
    conversation = await new_conversation(service.client, bob)
    fake_openai.script(*forget_then("Forgotten."), *forget_then("I did not forget it."))

    first = await turn(service, conversation, bob, "once")
    second = await turn(service, conversation, bob, "deny")

    assert results(first) == [f"forgot {ARGUMENTS['item']}"]
    assert "approval_requested" in names(second)
    [denied] = [event.data for event in second if event.event == "tool_call_finished"]
    assert (denied["result"], denied["is_error"]) == (DENIED_BY_USER, True)
    told = fake_openai.requests[-1]["messages"][-1]
    assert (told["role"], told["content"]) == ("tool", DENIED_BY_USER)


async def test_allowed_for_the_conversation_runs_there_without_asking_but_asks_in_another(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    _, bob = someone()
    conversation = await new_conversation(service.client, bob)
    fake_openai.script(*forget_then("Done."), *forget_then("Done again."), *forget_then("Not here."))

    await turn(service, conversation, bob, "conversation")
    again = await turn(service, conversation, bob)
    elsewhere = await turn(service, await new_conversation(service.client, bob), bob, "deny")

    assert "approval_requested" not in names(again)
    assert results(again) == [f"forgot {ARGUMENTS['item']}"]
    assert results(elsewhere) == [DENIED_BY_USER]


async def test_always_allowed_runs_in_every_conversation_of_that_user_only(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    (_, bob), (_, carol) = someone("bob"), someone("carol")
    fake_openai.script(*forget_then("Done."), *forget_then("Done again."), *forget_then("Not for Carol."))

    await turn(service, await new_conversation(service.client, bob), bob, "always")
    later = await turn(service, await new_conversation(service.client, bob), bob)
    someone_else = await turn(service, await new_conversation(service.client, carol), carol, "deny")

    assert "approval_requested" not in names(later)
    assert results(later) == [f"forgot {ARGUMENTS['item']}"]
    assert results(someone_else) == [DENIED_BY_USER]


async def test_another_user_can_neither_see_nor_decide_an_approval(service: Service, fake_openai: FakeOpenAI) -> None:
    (_, bob), (_, carol) = someone("bob"), someone("carol")
    conversation = await new_conversation(service.client, bob)
    carols = await new_conversation(service.client, carol)
    fake_openai.script(*forget_then("Not done."))
    answers: dict[str, httpx.Response] = {}

    async with open_stream(service.client, conversation, "forget the draft", bob) as events:
        async for event in events:
            if event.event == "approval_requested":
                approval = event.data["id"]
                post = service.client.post
                answers["list"] = await service.client.get(approval_url(conversation), headers=carol)
                answers["own list"] = await service.client.get(approval_url(carols), headers=carol)
                answers["decide"] = await post(
                    approval_url(conversation, approval), json={"decision": "always"}, headers=carol
                )
                answers["via own"] = await post(
                    approval_url(carols, approval), json={"decision": "always"}, headers=carol
                )
                answers["bad"] = await post(
                    approval_url(conversation, approval), json={"decision": "sure"}, headers=bob
                )
                answers["bob"] = await post(
                    approval_url(conversation, approval), json={"decision": "deny"}, headers=bob
                )
                answers["twice"] = await post(
                    approval_url(conversation, approval), json={"decision": "once"}, headers=bob
                )

    assert answers["list"].status_code == 404
    assert answers["own list"].json() == []
    assert (answers["decide"].status_code, answers["via own"].status_code) == (404, 404)
    assert answers["bad"].status_code == 422
    assert answers["bob"].status_code == 200
    assert answers["twice"].status_code == 409


async def test_admins_set_policies_per_server_tool_and_role_and_tools_show_the_callers_policy(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    client = service.client
    _, bob = someone()
    refused = await client.put("/api/tool-policies", json={"server_id": "test", "policy": "run"}, headers=bob)
    invalid = await client.put("/api/tool-policies", json={"server_id": "test", "policy": "maybe"}, headers=ALICE)
    rules = [
        {"server_id": "test", "tool": "forget", "role": "user", "policy": "deny"},
        {"server_id": "test", "tool": "echo", "policy": "ask"},
    ]
    for rule in rules:
        assert (await client.put("/api/tool-policies", json=rule, headers=ALICE)).status_code == 200
    try:
        stored = (await client.get("/api/tool-policies", headers=ALICE)).json()
        bobs = {tool["name"]: tool["policy"] for tool in (await client.get("/api/tools", headers=bob)).json()}
        alices = {tool["name"]: tool["policy"] for tool in (await client.get("/api/tools", headers=ALICE)).json()}
        fake_openai.script(*forget_then("Not allowed."))
        denied = await turn(service, await new_conversation(client, bob), bob)
    finally:
        removed = [
            await client.delete(
                "/api/tool-policies", params={k: v for k, v in rule.items() if k != "policy"}, headers=ALICE
            )
            for rule in rules
        ]
    removed_again = await client.delete(
        "/api/tool-policies", params={"server_id": "test", "tool": "echo"}, headers=ALICE
    )
    after = {tool["name"]: tool["policy"] for tool in (await client.get("/api/tools", headers=bob)).json()}

    assert (refused.status_code, invalid.status_code) == (403, 422)
    assert [(rule["tool"], rule["role"], rule["policy"], rule["updated_by"]) for rule in stored] == [
        ("echo", None, "ask", "alice"),
        ("forget", "user", "deny", "alice"),
    ]
    assert [bobs[name] for name in ("test__forget", "test__echo", "test__add", "test__read", "test__write")] == [
        "deny",
        "ask",
        "ask",
        "run",
        "run",
    ]
    assert (alices["test__forget"], alices["test__echo"]) == ("ask", "ask")
    assert "approval_requested" not in names(denied)
    assert results(denied) == [DENIED_BY_POLICY]
    assert [response.status_code for response in removed] == [204, 204]
    assert removed_again.status_code == 404
    assert (after["test__echo"], after["test__forget"]) == ("run", "ask")


async def test_every_decision_is_in_the_audit_log_which_only_admins_read(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    bob_id, bob = someone()
    conversation = await new_conversation(service.client, bob)
    fake_openai.script(tool_calls([("test__echo", {"text": "hi"})]), text("Echoed."), *forget_then("Forgotten."))
    await turn(service, conversation, bob)
    await turn(service, conversation, bob, "always")
    fake_openai.script(*forget_then("Forgotten again."))
    await turn(service, conversation, bob)

    audit = (await service.client.get("/api/approvals/audit", params={"user_id": bob_id}, headers=ALICE)).json()
    page = (
        await service.client.get("/api/approvals/audit", params={"user_id": bob_id, "limit": 1}, headers=ALICE)
    ).json()
    nobody = (await service.client.get("/api/approvals/audit", params={"user_id": "nobody"}, headers=ALICE)).json()
    refused = await service.client.get("/api/approvals/audit", headers=bob)

    entries = audit["entries"]
    assert [(entry["tool"], entry["decision"], entry["actor"], entry["decided_by"]) for entry in entries] == [
        ("forget", "granted", "grant", None),
        ("forget", "always", "user", bob_id),
        ("echo", "run", "policy", None),
    ]
    assert all(entry["conversation_id"] == conversation for entry in entries)
    assert json.loads(entries[1]["arguments"]) == ARGUMENTS
    assert entries[1]["approval_id"] is not None
    assert (audit["total"], page["entries"], page["total"]) == (3, entries[:1], 3)
    assert nobody == {"entries": [], "total": 0, "limit": 100, "offset": 0}
    assert refused.status_code == 403


async def test_a_call_nobody_decides_times_out_is_refused_and_can_no_longer_be_decided(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(jwt_secret_key=JWT_SECRET, tool_approval_timeout_seconds=0.5)
    fake_openai.script(*forget_then("Nobody allowed it."))
    _, bob = someone()
    async with running_service(settings) as service:
        conversation = await new_conversation(service.client, bob)
        async with open_stream(service.client, conversation, "forget the draft", bob) as events:
            seen = [event async for event in events]
        [requested] = [event.data for event in seen if event.event == "approval_requested"]
        late = await service.client.post(
            approval_url(conversation, requested["id"]), json={"decision": "once"}, headers=bob
        )

    assert [event.data["decision"] for event in seen if event.event == "approval_ended"] == ["timeout"]
    assert results(seen) == [TIMED_OUT]
    assert seen[-1].data["status"] == "complete"
    assert late.status_code == 409


async def test_a_pending_approval_outlives_a_restart_and_its_decision_finishes_the_resumed_turn(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI, database_url: str
) -> None:
    settings = make_settings(jwt_secret_key=JWT_SECRET, database_url=database_url)
    fake_openai.script(*forget_then("Forgotten."))
    _, bob = someone()
    async with running_service(settings) as service:
        conversation = await new_conversation(service.client, bob)
        async with open_stream(service.client, conversation, "forget the draft", bob) as events:
            approval = await anext(event async for event in events if event.event == "approval_requested")

    async with running_service(settings) as restarted:
        waiting = (await restarted.client.get(approval_url(conversation), headers=bob)).json()
        decided = await restarted.client.post(
            approval_url(conversation, approval.data["id"]), json={"decision": "conversation"}, headers=bob
        )
        with anyio.fail_after(30):
            rest = await follow_turn(restarted.client, conversation, headers=bob)
        left = (await restarted.client.get(approval_url(conversation), headers=bob)).json()
        stored = (await restarted.client.get(f"/api/conversations/{conversation}", headers=bob)).json()["messages"]

    assert [(pending["id"], pending["status"]) for pending in waiting] == [(approval.data["id"], "pending")]
    assert json.loads(waiting[0]["arguments"]) == ARGUMENTS
    assert (decided.status_code, decided.json()["status"]) == (200, "approved")
    assert left == []
    # The turn the restart interrupted went on with the same call, once, and finished.
    assert [event.data["status"] for event in rest if event.event == "message_end"] == ["complete"]
    assert [(m["role"], m["content"]) for m in stored if m["role"] == "tool"] == [
        ("tool", "forgot " + ARGUMENTS["item"])
    ]
    assert (stored[-1]["role"], stored[-1]["content"]) == ("assistant", "Forgotten.")
