"""Our stdio transport: finding the server's command, and messages of any size up to a limit."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import anyio
import pytest

from orchestrator.errors import ToolCallFailed
from orchestrator.mcp import stdio
from orchestrator.mcp.registry import McpRegistry
from orchestrator.mcp.stdio import find_command, server_environment
from orchestrator.mcp.types import ServerConfig
from tests.orchestrator.mcp.helpers import FAST_BACKOFF, REPO_ROOT, Changes, fake_server_config


def executable(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_bare_commands_are_looked_up_in_our_scripts_folder_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = tmp_path / "venv-bin"
    monkeypatch.setattr(stdio, "scripts_dir", lambda: str(ours))
    mine = executable(ours, "mcp-server-x")
    executable(tmp_path / "usr-bin", "mcp-server-x")
    elsewhere = executable(tmp_path / "usr-bin", "only-elsewhere")

    env = server_environment({"PATH": f"{tmp_path / 'usr-bin'}{os.pathsep}{ours}", "HOME": "/home/me"})

    assert env["PATH"].split(os.pathsep) == [str(ours), str(tmp_path / "usr-bin")]
    assert env["HOME"] == "/home/me"
    assert find_command("mcp-server-x", env["PATH"]) == str(mine)
    assert find_command("only-elsewhere", env["PATH"]) == str(elsewhere)
    assert find_command("./relative/srv", env["PATH"]) == "./relative/srv"
    assert find_command("not-installed-anywhere", env["PATH"]) == "not-installed-anywhere"


async def test_python_is_our_interpreter_even_when_the_path_does_not_lead_to_it() -> None:
    # As under `make run`, which starts .venv/bin/python without activating the venv.
    config = ServerConfig(
        id="bare",
        transport="stdio",
        command="python",
        args=("-m", "tests.fakes.mcp_test_server", "--name", "bare"),
        cwd=str(REPO_ROOT),
        env={"PATH": "/nonexistent"},
    )
    async with McpRegistry([config], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        output = await registry.call_tool("bare__name", {})

    assert output.text == "bare"


async def test_a_result_over_the_message_limit_fails_the_call_and_the_server_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stdio, "MAX_MESSAGE_BYTES", 1024 * 1024)
    changes = Changes()
    config = fake_server_config("big", tool_timeout_seconds=30)
    async with McpRegistry([config], on_change=changes, **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        # The tool timeout is 30 s: failing within 5 means the oversized message ended the connection at once.
        with anyio.fail_after(5), pytest.raises(ToolCallFailed):
            await registry.call_tool("big__flood", {"size": 3_000_000})
        error = registry.server("big").last_error
        await changes.until(lambda: registry.server("big").status == "healthy")
        echoed = await registry.call_tool("big__echo", {"text": "back"})

    assert error == "the server sent a message larger than 1 MiB"
    assert echoed.text == "back"


async def test_a_large_result_under_the_limit_arrives_whole() -> None:
    size = 8 * 1024 * 1024
    config = fake_server_config("large", tool_timeout_seconds=60)
    async with McpRegistry([config], tool_result_max_chars=size, **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        output = await registry.call_tool("large__flood", {"size": size})

    assert (len(output.text), output.truncated) == (size, False)
    assert output.text == "x" * size
