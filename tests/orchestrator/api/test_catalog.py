"""Resources and prompts of a real MCP server through the API; progress keeps a call alive; server logs reach ours."""

from __future__ import annotations

import base64
import logging
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.fakes.mcp_catalog_server import LOGO, README
from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.orchestrator.api.conftest import REPO_ROOT, SettingsFactory
from tests.support.service import Service, running_service
from tests.support.sse import Event
from tests.support.turns import json_turn, new_conversation, open_stream


def catalog_server() -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", "tests.fakes.mcp_catalog_server"], "cwd": str(REPO_ROOT)}


@pytest.fixture
async def catalog(make_settings: SettingsFactory) -> AsyncGenerator[Service]:
    settings = make_settings({"catalog": {**catalog_server(), "timeout": 1}})
    async with running_service(settings) as running:
        yield running


async def test_resources_and_templates_are_listed_with_their_server(catalog: Service) -> None:
    listed = (await catalog.client.get("/api/resources")).json()

    by_name = {item["name"]: item for item in listed}
    assert by_name["readme"]["uri"] == "catalog://readme"
    assert by_name["readme"]["server_id"] == "catalog"
    assert by_name["readme"]["mime_type"] == "text/plain"
    assert by_name["item"]["uri_template"] == "catalog://items/{item_id}"
    assert by_name["item"]["uri"] is None


async def test_a_resource_is_read_as_text_or_base64_and_templates_resolve(catalog: Service) -> None:
    client = catalog.client

    readme = await client.get("/api/resources/read", params={"server_id": "catalog", "uri": "catalog://readme"})
    logo = await client.get("/api/resources/read", params={"server_id": "catalog", "uri": "catalog://logo"})
    item = await client.get("/api/resources/read", params={"server_id": "catalog", "uri": "catalog://items/42"})

    assert readme.json()["contents"][0]["text"] == README
    assert base64.b64decode(logo.json()["contents"][0]["blob"]) == base64.b64decode(LOGO)
    assert item.json()["contents"][0]["text"] == "item 42"


async def test_reading_an_unknown_resource_or_server_is_a_clear_error(catalog: Service) -> None:
    missing = await catalog.client.get("/api/resources/read", params={"server_id": "catalog", "uri": "catalog://nope"})
    no_server = await catalog.client.get("/api/resources/read", params={"server_id": "ghost", "uri": "x://y"})

    assert (missing.status_code, missing.json()["code"]) == (502, "server_error")
    assert (no_server.status_code, no_server.json()["code"]) == (404, "not_found")


async def test_prompts_are_listed_and_rendered_with_arguments(catalog: Service) -> None:
    prompts = (await catalog.client.get("/api/prompts")).json()
    rendered = await catalog.client.post(
        "/api/prompts/get", json={"server_id": "catalog", "name": "summarize", "arguments": {"topic": "MCP"}}
    )
    missing_argument = await catalog.client.post(
        "/api/prompts/get", json={"server_id": "catalog", "name": "summarize", "arguments": {}}
    )

    [summarize] = [p for p in prompts if p["name"] == "summarize"]
    assert {a["name"]: a["required"] for a in summarize["arguments"]} == {"topic": True, "style": False}
    assert rendered.json()["messages"] == [{"role": "user", "text": "Summarize MCP in a short style."}]
    assert missing_argument.status_code == 502


async def test_an_attached_resource_goes_to_the_model_and_stays_in_the_stored_message(
    catalog: Service, fake_openai: FakeOpenAI
) -> None:
    conversation = await new_conversation(catalog.client)
    fake_openai.script(text("It says welcome."))

    reply = await catalog.client.post(
        f"/api/conversations/{conversation}/messages",
        json={"content": "What does this say?", "attachments": [{"server_id": "catalog", "uri": "catalog://readme"}]},
    )
    stored = (await catalog.client.get(f"/api/conversations/{conversation}")).json()["messages"]

    assert reply.status_code == 200
    sent = fake_openai.requests[-1]["messages"][-1]["content"]
    assert "What does this say?" in sent
    assert README in sent
    assert 'uri="catalog://readme"' in stored[0]["content"]


async def test_an_unreadable_attachment_refuses_the_message_before_anything_is_stored(catalog: Service) -> None:
    conversation = await new_conversation(catalog.client)

    reply = await catalog.client.post(
        f"/api/conversations/{conversation}/messages",
        json={"content": "look", "attachments": [{"server_id": "catalog", "uri": "catalog://nope"}]},
    )
    stored = (await catalog.client.get(f"/api/conversations/{conversation}")).json()["messages"]

    assert reply.status_code == 502
    assert stored == []


async def test_subscribed_resources_show_when_the_server_says_they_changed(
    catalog: Service, fake_openai: FakeOpenAI
) -> None:
    subscribed = await catalog.client.post(
        "/api/resources/subscriptions", json={"server_id": "catalog", "uri": "catalog://readme"}
    )
    conversation = await new_conversation(catalog.client)
    fake_openai.script(tool_calls([("catalog__touch", {"uri": "catalog://readme"})]), text("Touched."))

    await json_turn(catalog.client, conversation, "touch the readme")

    with anyio.fail_after(10):
        while True:
            listed = (await catalog.client.get("/api/resources")).json()
            [readme] = [item for item in listed if item["name"] == "readme"]
            if readme["updated_at"] is not None:
                break
            await anyio.sleep(0.05)
    assert subscribed.status_code == 204


async def test_changed_prompt_and_resource_lists_are_listed_again(catalog: Service, fake_openai: FakeOpenAI) -> None:
    conversation = await new_conversation(catalog.client)
    fake_openai.script(tool_calls([("catalog__touch", {"uri": "catalog://readme", "lists": True})]), text("Done."))

    await json_turn(catalog.client, conversation, "add a prompt")

    with anyio.fail_after(10):
        while True:
            if "late" in {p["name"] for p in (await catalog.client.get("/api/prompts")).json()}:
                break
            await anyio.sleep(0.05)


async def test_progress_keeps_a_call_alive_past_its_timeout(catalog: Service, fake_openai: FakeOpenAI) -> None:
    """The server's timeout is 1 s; a call that reports progress every 0.3 s for 2 s still finishes."""
    conversation = await new_conversation(catalog.client)
    fake_openai.script(tool_calls([("catalog__progress_for", {"seconds": 2, "every": 0.3})]), text("Finished."))

    events = []
    async with open_stream(catalog.client, conversation, "take your time") as stream:
        events = [event async for event in stream]

    finished = [e.data for e in events if e.event == "tool_call_finished"]
    progress = [e.data for e in events if e.event == "tool_call_progress"]
    assert finished[0]["is_error"] is False
    assert "done after" in finished[0]["result"]
    assert len(progress) >= 5


async def test_log_messages_from_a_server_reach_our_logs(
    catalog: Service, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    conversation = await new_conversation(catalog.client)
    fake_openai.script(tool_calls([("catalog__log", {"message": "disk almost full"})]), text("Logged."))

    with caplog.at_level(logging.INFO, logger="orchestrator.mcp.server_log"):
        await json_turn(catalog.client, conversation, "log something")
        with anyio.fail_after(10):
            while True:
                if any("disk almost full" in record.getMessage() for record in caplog.records):
                    break
                await anyio.sleep(0.05)

    [record] = [r for r in caplog.records if "disk almost full" in r.getMessage()]
    assert record.levelno == logging.WARNING


async def _answer_first_question(
    catalog: Service, conversation: str, events: AsyncIterator[Event], answer: dict[str, Any]
) -> tuple[dict[str, Any], list[Event]]:
    """Read the stream to the first question, answer it through the API, and read the stream to its end."""
    seen: list[Event] = []
    async for event in events:
        seen.append(event)
        if event.event == "interaction_requested":
            response = await catalog.client.post(
                f"/api/conversations/{conversation}/interactions/{event.data['id']}", json=answer
            )
            assert response.status_code == 204, response.text
            seen.extend([later async for later in events])
            return event.data, seen
    raise AssertionError("no question was asked")


async def test_a_form_elicitation_pauses_the_call_until_the_user_answers(
    catalog: Service, fake_openai: FakeOpenAI
) -> None:
    conversation = await new_conversation(catalog.client)
    fake_openai.script(tool_calls([("catalog__ask_name", {})]), text("Nice to meet you."))

    async with open_stream(catalog.client, conversation, "who am I?") as events:
        question, seen = await _answer_first_question(
            catalog, conversation, events, {"action": "accept", "content": {"name": "Ada", "age": 36}}
        )

    [finished] = [e.data for e in seen if e.event == "tool_call_finished"]
    assert question["kind"] == "elicitation"
    assert question["details"]["mode"] == "form"
    assert set(question["details"]["requested_schema"]["properties"]) == {"name", "age"}
    assert finished["result"] == "hello Ada, 36"
    assert [e.data["outcome"] for e in seen if e.event == "interaction_ended"] == ["accept"]


async def test_declining_an_elicitation_tells_the_server(catalog: Service, fake_openai: FakeOpenAI) -> None:
    conversation = await new_conversation(catalog.client)
    fake_openai.script(tool_calls([("catalog__ask_name", {})]), text("Fine."))

    async with open_stream(catalog.client, conversation, "who am I?") as events:
        _, seen = await _answer_first_question(catalog, conversation, events, {"action": "decline"})

    [finished] = [e.data for e in seen if e.event == "tool_call_finished"]
    assert finished["result"] == "no answer: decline"


async def test_a_form_answer_that_breaks_the_schema_is_refused(catalog: Service, fake_openai: FakeOpenAI) -> None:
    conversation = await new_conversation(catalog.client)
    fake_openai.script(tool_calls([("catalog__ask_name", {})]), text("Fine."))

    wrong = other_user = None
    async with open_stream(catalog.client, conversation, "who am I?") as events:
        async for event in events:
            if event.event == "interaction_requested":
                url = f"/api/conversations/{conversation}/interactions/{event.data['id']}"
                wrong = await catalog.client.post(url, json={"action": "accept", "content": {"name": "Ada"}})
                other_user = await catalog.client.post(
                    f"/api/conversations/{await new_conversation(catalog.client)}/interactions/{event.data['id']}",
                    json={"action": "decline"},
                )
                await catalog.client.post(url, json={"action": "cancel"})
                break
        rest = [e async for e in events]

    assert wrong is not None
    assert other_user is not None
    assert wrong.status_code == 422
    assert other_user.status_code == 404
    assert [e.data["result"] for e in rest if e.event == "tool_call_finished"] == ["no answer: cancel"]


async def test_an_unanswered_question_times_out_and_the_turn_goes_on(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings({"catalog": catalog_server()}, interaction_timeout_seconds=0.5)
    fake_openai.script(tool_calls([("catalog__ask_name", {})]), text("Nobody answered."))
    async with running_service(settings) as service:
        conversation = await new_conversation(service.client)
        async with open_stream(service.client, conversation, "who am I?") as events:
            seen = [event async for event in events]

    assert [e.data["outcome"] for e in seen if e.event == "interaction_ended"] == ["timeout"]
    assert [e.data["result"] for e in seen if e.event == "tool_call_finished"] == ["no answer: cancel"]
    assert seen[-1].data["status"] == "complete"


async def test_sampling_runs_through_our_model_once_the_user_allows_it(
    catalog: Service, fake_openai: FakeOpenAI
) -> None:
    conversation = await new_conversation(catalog.client)
    fake_openai.script(
        tool_calls([("catalog__ask_model", {"question": "What is 2+2?"})]), text("4"), text("The model said 4.")
    )

    async with open_stream(catalog.client, conversation, "ask your model") as events:
        question, seen = await _answer_first_question(catalog, conversation, events, {"action": "accept"})

    assert question["kind"] == "sampling"
    assert question["details"]["messages"] == [{"role": "user", "text": "What is 2+2?"}]
    assert [e.data["result"] for e in seen if e.event == "tool_call_finished"] == ["model says: 4"]
    sampling_request = fake_openai.requests[1]
    assert sampling_request["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert "tools" not in sampling_request or not sampling_request["tools"]


async def test_a_refused_sampling_request_never_reaches_the_model(catalog: Service, fake_openai: FakeOpenAI) -> None:
    conversation = await new_conversation(catalog.client)
    fake_openai.script(tool_calls([("catalog__ask_model", {"question": "secret?"})]), text("Refused."))

    async with open_stream(catalog.client, conversation, "ask your model") as events:
        _, seen = await _answer_first_question(catalog, conversation, events, {"action": "decline"})

    [finished] = [e.data for e in seen if e.event == "tool_call_finished"]
    assert finished["is_error"] is True
    assert "declined the sampling request" in finished["result"]
    assert len(fake_openai.requests) == 2  # the turn's two steps, no sampling call


async def test_roots_from_the_servers_file_are_offered(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings({"catalog": {**catalog_server(), "roots": [str(tmp_path)]}})
    fake_openai.script(tool_calls([("catalog__roots", {})]), text("Listed."))
    async with running_service(settings) as service:
        conversation = await new_conversation(service.client)
        reply = await json_turn(service.client, conversation, "what roots?")

    assert reply["tool_calls"][0]["result"] == tmp_path.as_uri()
