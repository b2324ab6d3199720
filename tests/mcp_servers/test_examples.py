"""examples/mcp_servers.{json,yaml}: valid for the orchestrator, the same servers, and every stdio entry starts."""

from __future__ import annotations

from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from orchestrator.mcp.config import load_servers_file
from orchestrator.mcp.stdio import server_environment
from orchestrator.mcp.types import ServerConfig
from tests.mcp_servers.harness import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"

# A tool each server must offer.
EXPECTED_TOOL = {"notes": "add_note", "workspace": "write_file", "time": "get_current_time", "git": "git_status"}


def test_the_json_and_yaml_examples_describe_the_same_servers() -> None:
    from_json = load_servers_file(EXAMPLES / "mcp_servers.json", environ={})
    from_yaml = load_servers_file(EXAMPLES / "mcp_servers.yaml", environ={})

    assert from_json == from_yaml
    assert {config.id: config.enabled for config in from_json} == {
        "notes": True,
        "workspace": True,
        "time": True,
        "git": True,
        "notes-http": False,
    }
    assert {config.id for config in from_json if config.send_user_id} == {"notes", "workspace", "notes-http"}


def test_the_http_example_points_at_the_notes_server_port() -> None:
    (http,) = [config for config in load_servers_file(EXAMPLES / "mcp_servers.json", environ={}) if not config.enabled]

    assert (http.transport, http.url) == ("streamable-http", "http://127.0.0.1:8101/mcp")


async def test_every_stdio_example_starts_and_lists_its_tools(tmp_path: Path) -> None:
    configs = [c for c in load_servers_file(EXAMPLES / "mcp_servers.json", environ={}) if c.transport == "stdio"]
    # Keep the first-party servers' data out of the repository's ./data.
    data = {"NOTES_DB_PATH": str(tmp_path / "notes.db"), "WORKSPACE_ROOT": str(tmp_path / "workspace")}
    tools: dict[str, set[str]] = {}

    async def list_tools(config: ServerConfig) -> None:
        assert config.command == "python"
        env = {key: data.get(key, value) for key, value in config.env.items()}
        # In the environment the orchestrator gives a server: its own venv's bin folder first on PATH, so the bare
        # "python" is the interpreter that has the servers installed, activated or not.
        params = StdioServerParameters(
            command=config.command, args=list(config.args), env=server_environment(env), cwd=config.cwd
        )
        with anyio.fail_after(30):
            async with Client(params) as client:
                tools[config.id] = {tool.name for tool in (await client.list_tools()).tools}

    async with anyio.create_task_group() as group:
        for config in configs:
            group.start_soon(list_tools, config)

    assert {server: EXPECTED_TOOL[server] in names for server, names in tools.items()} == dict.fromkeys(
        EXPECTED_TOOL, True
    )
