"""``@modelcontextprotocol/server-everything``, the MCP reference test server, on every transport through our stack.

One orchestrator serves the module, configured from a servers file alone with three copies of the server: a
stdio child it starts itself, and two the tests start as a user would run them, serving streamable HTTP and the
legacy HTTP+SSE transport. Node 22 and the package come from ``tools/node`` (``make node-tools``).

Sampling and elicitation go through the user: the turn's stream announces the server's question
(``interaction_requested``) and the test answers it through the API, as the chat page would.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import pytest
from mcp.client.stdio import DEFAULT_INHERITED_ENV_VARS

from orchestrator.settings import load_settings
from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer, text, tool_calls
from tests.support.node import NODE_TOOLS, node_path, npm_command, serving_over_http, watching_logs
from tests.support.service import Service, running_service
from tests.support.sse import Event
from tests.support.turns import json_turn, new_conversation, open_stream, stream_turn

Transport = Literal["stdio", "streamable-http", "sse"]
TRANSPORTS: Final[tuple[Transport, ...]] = ("stdio", "streamable-http", "sse")
SERVER_IDS: Final[dict[Transport, str]] = {
    "stdio": "everything",
    "streamable-http": "everything-http",
    "sse": "everything-sse",
}

TOOLS_AT_START: Final = frozenset(
    {
        "echo",
        "get-annotated-message",
        "get-env",
        "get-resource-links",
        "get-resource-reference",
        "get-structured-content",
        "get-sum",
        "get-tiny-image",
        "gzip-file-as-resource",
        "toggle-simulated-logging",
        "toggle-subscriber-updates",
        "trigger-long-running-operation",
    }
)
"""What server-everything registers before the handshake."""

TOOLS_AFTER_INITIALISATION: Final = frozenset(
    {"get-roots-list", "trigger-sampling-request", "trigger-elicitation-request", "trigger-url-elicitation"}
)
"""What it registers in its ``notifications/initialized`` handler, announced with ``tools/list_changed``, because
our client declares roots (``roots`` in the servers file), sampling and elicitation (form and URL). It also
registers ``simulate-research-query``, which may only run as a task: we do not offer that to the model. Its
``trigger-*-async`` tools need the tasks capability, which we lack.
It registers them before it answers our first ``tools/list``, so they are listed even without the notification;
the session resource test shows a change announced later being followed (``resources/list_changed``)."""

STATIC_DOCUMENTS: Final = frozenset(
    {"architecture.md", "extension.md", "features.md", "how-it-works.md", "instructions.md", "startup.md"}
    | {"structure.md"}
)
"""Its ``docs`` folder, served as ``demo://resource/static/document/<name>``."""
DOCUMENTS_ON_DISK: Final = NODE_TOOLS / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "docs"

GREETING: Final = "hello from the servers file"
RUN: Final = {"default": "run"}
"""Not a test of approvals: every tool runs, whatever its annotations say."""


@pytest.fixture(scope="module")
async def everything_over_http(tmp_path_factory: pytest.TempPathFactory) -> AsyncGenerator[str]:
    log = tmp_path_factory.mktemp("everything-http") / "server.log"
    async with serving_over_http(npm_command("mcp-server-everything"), "streamableHttp", log=log) as url:
        yield url


@pytest.fixture(scope="module")
async def everything_over_sse(tmp_path_factory: pytest.TempPathFactory) -> AsyncGenerator[str]:
    log = tmp_path_factory.mktemp("everything-sse") / "server.log"
    async with serving_over_http(npm_command("mcp-server-everything"), "sse", log=log) as url:
        yield url


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the servers file offers the servers as their root."""
    return tmp_path_factory.mktemp("workspace")


@pytest.fixture(scope="module")
async def service(
    tmp_path_factory: pytest.TempPathFactory,
    openai_server: FakeOpenAIServer,
    everything_over_http: str,
    everything_over_sse: str,
    workspace: Path,
) -> AsyncGenerator[Service]:
    """The orchestrator on the fake model, with server-everything over each transport in its servers file."""
    folder = tmp_path_factory.mktemp("orchestrator")
    roots = [str(workspace)]
    servers = {
        SERVER_IDS["stdio"]: {
            "command": npm_command("mcp-server-everything"),
            "args": ["stdio"],
            "env": {"PATH": node_path(), "GREETING": GREETING},
            "roots": roots,
            "toolPolicy": RUN,
        },
        SERVER_IDS["streamable-http"]: {"url": f"{everything_over_http}/mcp", "roots": roots, "toolPolicy": RUN},
        SERVER_IDS["sse"]: {"url": f"{everything_over_sse}/sse", "roots": roots, "toolPolicy": RUN},
    }
    servers_file = folder / "servers.json"
    servers_file.write_text(json.dumps({"mcpServers": servers}))
    settings = load_settings(
        data_dir=folder / "data",
        openai_api_key=openai_server.api_key,
        openai_base_url=openai_server.base_url,
        openai_model="fake-gpt",
        openai_max_retries=2,
        mcp_config=servers_file,
        mcp_builtin_servers=False,
        mcp_tool_timeout_seconds=10,
        # Three copies of the server's tools: every one of them is offered, so tests see what the model would.
        tool_retrieval_enabled=False,
        _env_file=None,
    )
    async with running_service(settings) as running:
        yield running


async def listed_tools(service: Service, transport: Transport) -> dict[str, dict[str, Any]]:
    """The server's tools in ``/api/tools``, by exposed name."""
    response = await service.client.get("/api/tools")
    assert response.status_code == 200, response.text
    server_id = SERVER_IDS[transport]
    return {tool["name"]: tool for tool in response.json() if tool["server_id"] == server_id}


async def read_resource(service: Service, transport: Transport, uri: str) -> list[dict[str, Any]]:
    response = await service.client.get("/api/resources/read", params={"server_id": SERVER_IDS[transport], "uri": uri})
    assert response.status_code == 200, response.text
    contents: list[dict[str, Any]] = response.json()["contents"]
    return contents


async def render_prompt(service: Service, transport: Transport, name: str, **arguments: str) -> list[dict[str, Any]]:
    body = {"server_id": SERVER_IDS[transport], "name": name, "arguments": arguments}
    response = await service.client.post("/api/prompts/get", json=body)
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def turn_answering(service: Service, content: str, answer: dict[str, Any]) -> list[Event]:
    """Run a streamed turn, giving ``answer`` to every question a server asks during it; all its events."""
    conversation = await new_conversation(service.client)
    events: list[Event] = []
    with anyio.fail_after(30):
        async with open_stream(service.client, conversation, content) as stream:
            async for event in stream:
                events.append(event)
                if event.event == "interaction_requested":
                    url = f"/api/conversations/{conversation}/interactions/{event.data['id']}"
                    answered = await service.client.post(url, json=answer)
                    assert answered.status_code == 204, answered.text
    return events


async def listed_resource(service: Service, transport: Transport, uri: str, *, updated: bool = False) -> dict[str, Any]:
    """``uri`` in ``/api/resources`` once it is listed (and with ``updated``, once it has an ``updated_at``)."""
    server_id = SERVER_IDS[transport]
    with anyio.fail_after(10):
        while True:
            listed = (await service.client.get("/api/resources")).json()
            found = [r for r in listed if r["server_id"] == server_id and r["uri"] == uri]
            if found and (found[0]["updated_at"] is not None or not updated):
                return found[0]
            await anyio.sleep(0.05)  # polling: the API has no event to wait on


def finished_calls(events: list[Event]) -> list[dict[str, Any]]:
    return [event.data for event in events if event.event == "tool_call_finished"]


async def test_every_transport_connects_from_the_servers_file(service: Service) -> None:
    response = await service.client.get("/api/servers")

    servers = {server["id"]: (server["transport"], server["status"]) for server in response.json()}
    assert servers == {
        "everything": ("stdio", "healthy"),
        "everything-http": ("streamable-http", "healthy"),
        "everything-sse": ("sse", "healthy"),
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_its_tools_are_listed_under_the_server_id(service: Service, transport: Transport) -> None:
    tools = await listed_tools(service, transport)

    server_id = SERVER_IDS[transport]
    assert {tool["tool"] for tool in tools.values()} - TOOLS_AFTER_INITIALISATION == TOOLS_AT_START
    assert all(name == f"{server_id}__{tool['tool']}" for name, tool in tools.items())
    assert tools[f"{server_id}__get-sum"]["input_schema"]["required"] == ["a", "b"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_tools_it_registers_after_initialisation_are_listed(service: Service, transport: Transport) -> None:
    tools = await listed_tools(service, transport)

    assert {tool["tool"] for tool in tools.values()} >= TOOLS_AFTER_INITIALISATION


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_echo_and_get_sum_answer_the_model_in_one_step(
    service: Service, fake_openai: FakeOpenAI, transport: Transport
) -> None:
    server_id = SERVER_IDS[transport]
    fake_openai.script(
        tool_calls([(f"{server_id}__echo", {"message": "ping"}), (f"{server_id}__get-sum", {"a": 2, "b": 40})]),
        text("Echoed and added."),
    )

    reply = await json_turn(service.client, await new_conversation(service.client), "echo ping and add 2 and 40")

    assert [(call["is_error"], call["result"]) for call in reply["tool_calls"]] == [
        (False, "Echo: ping"),
        (False, "The sum of 2 and 40 is 42."),
    ]
    assert reply["content"] == "Echoed and added."
    offered = {tool["function"]["name"] for tool in fake_openai.requests[0]["tools"]}
    assert {f"{server_id}__echo", f"{server_id}__get-sum"} <= offered
    tool_messages = [m for m in fake_openai.requests[-1]["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["Echo: ping", "The sum of 2 and 40 is 42."]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_progress_of_a_long_running_operation_reaches_the_event_stream(
    service: Service, fake_openai: FakeOpenAI, transport: Transport
) -> None:
    name = f"{SERVER_IDS[transport]}__trigger-long-running-operation"
    fake_openai.script(tool_calls([(name, {"duration": 0.3, "steps": 3})]), text("Done."))

    events = await stream_turn(service.client, await new_conversation(service.client), "run the long operation")

    tool_events = [e.event for e in events if e.event.startswith("tool_call_")]
    progress = [(e.data["progress"], e.data["total"]) for e in events if e.event == "tool_call_progress"]
    [finished] = [e.data for e in events if e.event == "tool_call_finished"]
    assert tool_events == ["tool_call_started", *["tool_call_progress"] * 3, "tool_call_finished"]
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert not finished["is_error"]
    assert finished["result"] == "Long running operation completed. Duration: 0.3 seconds, Steps: 3."
    assert events[-1].event == "message_end"


async def test_a_stdio_server_sees_the_servers_file_env_and_no_other_variables_of_ours(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(tool_calls([("everything__get-env", {})]), text("Listed."))

    reply = await json_turn(service.client, await new_conversation(service.client), "show your environment")

    environment = json.loads(reply["tool_calls"][0]["result"])
    assert environment["GREETING"] == GREETING
    assert set(environment) <= {*DEFAULT_INHERITED_ENV_VARS, "GREETING"}


async def test_images_resources_and_structured_content_reach_the_model_as_text(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        tool_calls(
            [
                ("everything__get-tiny-image", {}),
                ("everything__get-resource-reference", {"resourceType": "Text", "resourceId": 1}),
                ("everything__get-resource-links", {"count": 2}),
                ("everything__get-structured-content", {"location": "New York"}),
            ]
        ),
        text("Seen."),
    )

    reply = await json_turn(service.client, await new_conversation(service.client), "show me everything")

    image, reference, links, structured = (call["result"] for call in reply["tool_calls"])
    assert not any(call["is_error"] for call in reply["tool_calls"])
    assert "[image: image/png, " in image
    assert "\nResource 1: This is a plaintext resource" in reference  # the embedded resource's own text
    assert links.splitlines()[1:] == [
        "[resource: demo://resource/dynamic/blob/1]",
        "[resource: demo://resource/dynamic/text/2]",
    ]
    assert set(json.loads(structured)) == {"temperature", "conditions", "humidity"}  # its weather is random


async def test_a_tool_that_may_only_run_as_a_task_is_not_offered_to_the_model(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(text("Hello."))

    await json_turn(service.client, await new_conversation(service.client), "research tides")

    offered = {tool["function"]["name"] for tool in fake_openai.requests[-1]["tools"]}
    assert "everything__echo" in offered
    assert "everything__simulate-research-query" not in offered


async def test_arguments_the_server_rejects_come_back_as_a_tool_error(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(tool_calls([("everything__get-sum", {"a": "two", "b": 3})]), text("That failed."))

    reply = await json_turn(service.client, await new_conversation(service.client), "add two and 3")

    [call] = reply["tool_calls"]
    assert call["is_error"]
    assert reply["status"] == "complete"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_roots_in_the_servers_file_reach_the_server(
    service: Service, fake_openai: FakeOpenAI, transport: Transport, workspace: Path
) -> None:
    fake_openai.script(tool_calls([(f"{SERVER_IDS[transport]}__get-roots-list", {})]), text("Listed."))

    reply = await json_turn(service.client, await new_conversation(service.client), "which folders can you see?")

    [call] = reply["tool_calls"]
    assert not call["is_error"]
    assert "Current MCP Roots (1 total)" in call["result"]
    assert f"URI: {workspace.as_uri()}" in call["result"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_its_resources_and_resource_templates_are_listed(service: Service, transport: Transport) -> None:
    response = await service.client.get("/api/resources")

    mine = [r for r in response.json() if r["server_id"] == SERVER_IDS[transport]]
    assert {r["uri"] for r in mine if r["uri"]} == {f"demo://resource/static/document/{n}" for n in STATIC_DOCUMENTS}
    assert {r["uri_template"] for r in mine if r["uri_template"]} == {
        "demo://resource/dynamic/text/{resourceId}",
        "demo://resource/dynamic/blob/{resourceId}",
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_listed_and_templated_resources_are_read_by_uri(service: Service, transport: Transport) -> None:
    [document] = await read_resource(service, transport, "demo://resource/static/document/features.md")
    [text_resource] = await read_resource(service, transport, "demo://resource/dynamic/text/1")
    [blob_resource] = await read_resource(service, transport, "demo://resource/dynamic/blob/2")

    assert document["text"] == (DOCUMENTS_ON_DISK / "features.md").read_text()
    assert document["mime_type"] == "text/markdown"
    assert text_resource["text"].startswith("Resource 1: This is a plaintext resource created at ")
    assert base64.b64decode(blob_resource["blob"]).startswith(b"Resource 2: This is a base64 blob created at ")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_its_prompts_are_listed_with_their_arguments(service: Service, transport: Transport) -> None:
    response = await service.client.get("/api/prompts")

    prompts = {
        p["name"]: [(a["name"], a["required"]) for a in p["arguments"]]
        for p in response.json()
        if p["server_id"] == SERVER_IDS[transport]
    }
    assert prompts == {
        "simple-prompt": [],
        "args-prompt": [("city", True), ("state", False)],
        "completable-prompt": [("department", True), ("name", True)],
        "resource-prompt": [("resourceType", True), ("resourceId", True)],
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_prompts_render_with_their_arguments_and_embedded_resources(
    service: Service, transport: Transport
) -> None:
    simple = await render_prompt(service, transport, "simple-prompt")
    weather = await render_prompt(service, transport, "args-prompt", city="Lisbon", state="Portugal")
    with_resource = await render_prompt(service, transport, "resource-prompt", resourceType="Text", resourceId="2")

    assert simple == [{"role": "user", "text": "This is a simple prompt without arguments."}]
    assert weather == [{"role": "user", "text": "What's weather in Lisbon, Portugal?"}]
    assert [m["role"] for m in with_resource] == ["user", "user"]
    assert with_resource[1]["text"].startswith("Resource 2: This is a plaintext resource created at ")


async def test_a_resource_attached_to_a_message_reaches_the_model(service: Service, fake_openai: FakeOpenAI) -> None:
    conversation = await new_conversation(service.client)
    attachment = {"server_id": "everything", "uri": "demo://resource/static/document/instructions.md"}
    fake_openai.script(text("Read it."))

    response = await service.client.post(
        f"/api/conversations/{conversation}/messages",
        json={"content": "Summarise this", "attachments": [attachment]},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 200, response.text
    [user_message] = [m for m in fake_openai.requests[-1]["messages"] if m["role"] == "user"]
    assert user_message["content"].startswith("Summarise this")
    assert (DOCUMENTS_ON_DISK / "instructions.md").read_text().strip() in user_message["content"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_subscribed_resource_shows_when_the_server_says_it_changed(
    service: Service, fake_openai: FakeOpenAI, transport: Transport
) -> None:
    server_id = SERVER_IDS[transport]
    uri = "demo://resource/static/document/features.md"
    subscribed = await service.client.post("/api/resources/subscriptions", json={"server_id": server_id, "uri": uri})
    assert subscribed.status_code == 204, subscribed.text
    # Turning its updates on sends one at once; turning them off again stops its 5-second timer.
    toggle = tool_calls([(f"{server_id}__toggle-subscriber-updates", {})])
    fake_openai.script(toggle, toggle, text("Toggled."))

    await json_turn(service.client, await new_conversation(service.client), "toggle the updates on and off")

    resource = await listed_resource(service, transport, uri, updated=True)
    assert resource["updated_at"] is not None


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_resource_a_tool_creates_is_listed_once_the_server_says_the_list_changed(
    service: Service, fake_openai: FakeOpenAI, transport: Transport
) -> None:
    server_id = SERVER_IDS[transport]
    hello = "data:text/plain;base64," + base64.b64encode(b"hello").decode()
    fake_openai.script(
        tool_calls([(f"{server_id}__gzip-file-as-resource", {"name": "hello.gz", "data": hello})]), text("Zipped.")
    )

    reply = await json_turn(service.client, await new_conversation(service.client), "gzip hello")

    assert reply["tool_calls"][0]["result"] == "[resource: demo://resource/session/hello.gz]"
    listed = await listed_resource(service, transport, "demo://resource/session/hello.gz")
    [contents] = await read_resource(service, transport, "demo://resource/session/hello.gz")
    assert listed["mime_type"] == contents["mime_type"] == "application/gzip"
    assert gzip.decompress(base64.b64decode(contents["blob"])) == b"hello"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_servers_log_messages_reach_our_logs(service: Service, transport: Transport) -> None:
    server_id = SERVER_IDS[transport]
    uri = "demo://resource/static/document/architecture.md"
    # It logs every subscription at info level: a message we can cause at will (its simulated logging is random).
    with watching_logs(f"Received Subscribe Resource request for URI: {uri}") as logs:
        subscribed = await service.client.post(
            "/api/resources/subscriptions", json={"server_id": server_id, "uri": uri}
        )
        assert subscribed.status_code == 204, subscribed.text
        with anyio.fail_after(10):
            await logs.seen.wait()

    assert all(server_id in message for message in logs.messages)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_sampling_request_the_user_allows_is_answered_by_our_model(
    service: Service, fake_openai: FakeOpenAI, transport: Transport
) -> None:
    server_id = SERVER_IDS[transport]
    fake_openai.script(
        tool_calls([(f"{server_id}__trigger-sampling-request", {"prompt": "Say hi", "maxTokens": 50})]),
        text("Hi from our model."),  # the sampling request
        text("It said hi."),
    )

    events = await turn_answering(service, "ask the server to sample", {"action": "accept"})

    [asked] = [e.data for e in events if e.event == "interaction_requested"]
    assert (asked["kind"], asked["server_id"]) == ("sampling", server_id)
    assert asked["details"] == {
        "system_prompt": "You are a helpful test server.",
        "messages": [{"role": "user", "text": "Resource trigger-sampling-request context: Say hi"}],
        "max_tokens": 50,
    }
    sampling = fake_openai.requests[1]
    assert [m["role"] for m in sampling["messages"]] == ["system", "user"]
    assert not sampling.get("tools")
    [call] = finished_calls(events)
    assert not call["is_error"]
    result = json.loads(call["result"].removeprefix("LLM sampling result: \n"))
    assert (result["content"]["text"], result["model"]) == ("Hi from our model.", "fake-gpt")
    assert events[-1].data["content"] == "It said hi."


async def test_a_sampling_request_the_user_declines_never_reaches_our_model(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        tool_calls([("everything__trigger-sampling-request", {"prompt": "Say hi"})]),
        text("It was not allowed."),
    )

    events = await turn_answering(service, "ask the server to sample", {"action": "decline"})

    [call] = finished_calls(events)
    assert call["is_error"]
    assert len(fake_openai.requests) == 2  # the turn's two steps; no sampling request between them
    assert events[-1].data["content"] == "It was not allowed."


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_form_the_server_asks_for_is_filled_by_the_user(
    service: Service, fake_openai: FakeOpenAI, transport: Transport
) -> None:
    server_id = SERVER_IDS[transport]
    fake_openai.script(tool_calls([(f"{server_id}__trigger-elicitation-request", {})]), text("Thanks."))
    form = {"name": "Ada Lovelace", "check": True, "integer": 7}

    events = await turn_answering(service, "fill in the form", {"action": "accept", "content": form})

    [asked] = [e.data for e in events if e.event == "interaction_requested"]
    assert (asked["kind"], asked["details"]["mode"]) == ("elicitation", "form")
    assert asked["details"]["requested_schema"]["required"] == ["name"]
    [call] = finished_calls(events)
    assert not call["is_error"]
    assert "- Name: Ada Lovelace\n- Agreed to terms: true\n- Favorite Integer: 7" in call["result"]


async def test_a_form_the_user_declines_tells_the_server_so(service: Service, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls([("everything__trigger-elicitation-request", {})]), text("Fine."))

    events = await turn_answering(service, "fill in the form", {"action": "decline"})

    [call] = finished_calls(events)
    assert "User declined to provide the requested information" in call["result"]


async def test_a_link_the_server_asks_the_user_to_open_is_shown_and_its_outcome_returned(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    link = "https://example.com/authorize"
    fake_openai.script(tool_calls([("everything__trigger-url-elicitation", {"url": link})]), text("Done."))

    events = await turn_answering(service, "authorise", {"action": "accept"})

    [asked] = [e.data for e in events if e.event == "interaction_requested"]
    assert (asked["details"]["mode"], asked["details"]["url"]) == ("url", link)
    [call] = finished_calls(events)
    assert "User completed the URL elicitation flow." in call["result"]
    assert f"URL: {link}" in call["result"]


async def test_a_link_the_server_requires_before_a_call_is_shown_and_the_call_asked_again(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    """Error -32042 (URL elicitation required): the user sees the link, and the call is made once more after it."""
    link = "https://example.com/connect"
    arguments = {"url": link, "errorPath": True}
    fake_openai.script(tool_calls([("everything__trigger-url-elicitation", arguments)]), text("Done."))

    events = await turn_answering(service, "connect", {"action": "accept"})

    asked = [e.data["details"] for e in events if e.event == "interaction_requested"]
    [call] = finished_calls(events)
    # First the link the error names; then the second call runs and asks for the tool's own link.
    assert [question["mode"] for question in asked] == ["url", "url"]
    assert asked[-1]["url"] == link
    assert not call["is_error"]
    assert "-32042" not in call["result"]


async def test_a_required_link_the_user_declines_fails_the_call_without_asking_again(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    arguments = {"url": "https://example.com/connect", "errorPath": True}
    fake_openai.script(tool_calls([("everything__trigger-url-elicitation", arguments)]), text("Done."))

    events = await turn_answering(service, "connect", {"action": "decline"})

    [call] = finished_calls(events)
    assert call["is_error"]
    assert "the user did not" in call["result"]
