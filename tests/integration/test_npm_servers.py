"""Third-party MCP servers from npm plug in from the servers file alone and answer the model's tool calls.

Each server is configured as a user with the package installed globally would write it: its command, its
arguments, and an ``env`` whose ``PATH`` finds Node 22 (``tools/node``, installed by ``make node-tools``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from tests.fakes.openai_server import FakeOpenAI, Reply, text, tool_calls
from tests.orchestrator.api.conftest import SettingsFactory
from tests.support.node import node_path, npm_command, watching_logs
from tests.support.service import running_service
from tests.support.turns import json_turn, new_conversation

RUN = {"default": "run"}
"""These tests are not about approvals: the servers' tools run whatever their annotations say."""


def answer_with_the_tool_results(request: dict[str, Any]) -> Reply:
    """The fake model's last step: repeat what the tools just said, as a model summing up their results would."""
    said: list[str] = []
    for message in reversed(request["messages"]):
        if message["role"] != "tool":
            break
        said.append(str(message["content"]))
    return text("\n".join(reversed(said)))


async def test_server_filesystem_writes_and_reads_a_file_in_its_root_for_the_model(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    root.mkdir()
    note = root / "shopping.txt"
    servers = {
        "files": {
            "command": npm_command("mcp-server-filesystem"),
            "args": [str(root)],
            "env": {"PATH": node_path()},
            "toolPolicy": RUN,
        }
    }
    fake_openai.reset(responder=answer_with_the_tool_results)
    fake_openai.script(
        tool_calls([("files__write_file", {"path": str(note), "content": "oat milk\nrye bread"})]),
        tool_calls([("files__read_text_file", {"path": str(note)})]),
    )
    async with running_service(make_settings(servers=servers)) as service:
        reply = await json_turn(service.client, await new_conversation(service.client), "Save my list, read it back")

    [wrote, read] = reply["tool_calls"]
    assert (wrote["is_error"], read["is_error"]) == (False, False)
    assert reply["status"] == "complete"
    assert "oat milk\nrye bread" in reply["content"]
    assert note.read_text() == "oat milk\nrye bread"


async def test_server_filesystem_refuses_a_path_outside_its_root_as_a_tool_error_the_model_reads(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("do not show")
    servers = {
        "files": {
            "command": npm_command("mcp-server-filesystem"),
            "args": [str(root)],
            "env": {"PATH": node_path()},
            "toolPolicy": RUN,
        }
    }
    fake_openai.reset(responder=answer_with_the_tool_results)
    fake_openai.script(tool_calls([("files__read_text_file", {"path": str(secret)})]))
    async with running_service(make_settings(servers=servers)) as service:
        reply = await json_turn(service.client, await new_conversation(service.client), "Read the secret")

    [call] = reply["tool_calls"]
    assert call["is_error"]
    assert reply["status"] == "complete"
    assert "do not show" not in reply["content"]


async def test_server_filesystem_serves_the_roots_given_in_the_servers_file(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    # No folder in its arguments: it asks the client for roots once initialised, and serves those.
    servers = {
        "files": {
            "command": npm_command("mcp-server-filesystem"),
            "env": {"PATH": node_path()},
            "roots": [str(root)],
            "toolPolicy": RUN,
        }
    }
    fake_openai.reset(responder=answer_with_the_tool_results)
    fake_openai.script(
        tool_calls([("files__write_file", {"path": str(root / "todo.txt"), "content": "ship it"})]),
        tool_calls([("files__list_allowed_directories", {})]),
    )
    with watching_logs("Updated allowed directories from MCP roots") as stderr:  # it says so once it has them
        async with running_service(make_settings(servers=servers)) as service:
            with anyio.fail_after(10):
                await stderr.seen.wait()
            reply = await json_turn(service.client, await new_conversation(service.client), "Note: ship it")

    assert [call["is_error"] for call in reply["tool_calls"]] == [False, False]
    assert str(root) in reply["content"]
    assert (root / "todo.txt").read_text() == "ship it"


async def test_server_memory_keeps_entities_the_model_creates_and_reads_the_graph_back(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    memory_file = tmp_path / "memory.jsonl"
    servers = {
        "memory": {
            "command": npm_command("mcp-server-memory"),
            "env": {"PATH": node_path(), "MEMORY_FILE_PATH": str(memory_file)},
            "toolPolicy": RUN,
        }
    }
    ada = {"name": "Ada", "entityType": "person", "observations": ["prefers tea"]}
    lisbon = {"name": "Lisbon", "entityType": "city", "observations": ["sunny"]}
    lives_in = {"from": "Ada", "to": "Lisbon", "relationType": "lives_in"}
    fake_openai.reset(responder=answer_with_the_tool_results)
    fake_openai.script(
        tool_calls([("memory__create_entities", {"entities": [ada, lisbon]})]),
        tool_calls([("memory__create_relations", {"relations": [lives_in]})]),
        tool_calls([("memory__read_graph", {})]),
    )
    async with running_service(make_settings(servers=servers)) as service:
        reply = await json_turn(service.client, await new_conversation(service.client), "Remember Ada lives in Lisbon")

    assert [call["is_error"] for call in reply["tool_calls"]] == [False, False, False]
    graph = json.loads(reply["content"])
    assert {(e["name"], e["entityType"], tuple(e["observations"])) for e in graph["entities"]} == {
        ("Ada", "person", ("prefers tea",)),
        ("Lisbon", "city", ("sunny",)),
    }
    assert graph["relations"] == [lives_in]
    stored = [json.loads(line) for line in memory_file.read_text().splitlines()]
    assert {record["name"] for record in stored if record["type"] == "entity"} == {"Ada", "Lisbon"}
