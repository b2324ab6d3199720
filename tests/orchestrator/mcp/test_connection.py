"""One server connection on its own: protocol eras, health, and stopping."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

import anyio
import pytest
from mcp.client.client import ConnectMode

from orchestrator.errors import ServerUnavailable, ToolCallFailed
from orchestrator.mcp.connection import ServerConnection
from orchestrator.mcp.types import ServerConfig
from tests.orchestrator.mcp.helpers import FAST_BACKOFF, Changes, fake_server_config


@asynccontextmanager
async def running(connection: ServerConnection) -> AsyncGenerator[ServerConnection]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.run)
        try:
            with anyio.fail_after(20):
                await connection.wait_settled()
            yield connection
        finally:
            connection.stop()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_list_changed_is_followed_in_both_protocol_eras(mode: ConnectMode) -> None:
    changes = Changes()
    connection = ServerConnection(fake_server_config("era"), on_change=changes, protocol_mode=mode, **FAST_BACKOFF)
    async with running(connection):
        assert connection.status == "healthy"

        await connection.call_tool("add_tool", {"tool_name": "late"})
        await changes.until(lambda: "era__late" in {spec.name for spec in connection.tools})
        result = await connection.call_tool("late", {})

    assert result.content[0].model_dump()["text"] == "late is here"


async def test_calls_on_an_unhealthy_server_raise_server_unavailable_at_once() -> None:
    missing = ServerConfig(id="missing", transport="stdio", command="/nonexistent/mcp-server")
    connection = ServerConnection(missing, **FAST_BACKOFF)
    async with running(connection):
        with anyio.fail_after(1), pytest.raises(ServerUnavailable) as caught:
            await connection.call_tool("anything", {})

    assert caught.value.reason == connection.last_error
    assert connection.info().last_error == "cannot start '/nonexistent/mcp-server': No such file or directory"


async def test_stopping_closes_the_connection_and_marks_it_stopped() -> None:
    connection = ServerConnection(fake_server_config("brief"), **FAST_BACKOFF)
    async with running(connection):
        assert connection.info().connected_at is not None

    assert connection.status == "stopped"
    assert connection.tools == ()
    with pytest.raises(ServerUnavailable):
        await connection.call_tool("echo", {"text": "gone"})


async def test_a_server_that_dies_at_start_up_reports_its_last_stderr_line_without_secrets() -> None:
    script = "import os, sys; sys.exit('rejected token ' + os.environ['TOKEN'])"
    config = ServerConfig(
        id="dies", transport="stdio", command=sys.executable, args=("-c", script), env={"TOKEN": "hunter22"}
    )
    connection = ServerConnection(config, **FAST_BACKOFF)
    async with running(connection):
        error = connection.last_error

    assert error == "the server process exited or closed its output; its last stderr line: rejected token ***"


async def test_secrets_from_args_are_masked_in_logged_stderr_and_in_the_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.mcp")
    script = "import sys; print('started with', *sys.argv[1:], file=sys.stderr, flush=True); sys.exit(sys.argv[-1])"
    config = ServerConfig(
        id="argy", transport="stdio", command=sys.executable, args=("-c", script, "--api-key", "sekrit-123")
    )
    connection = ServerConnection(config, **FAST_BACKOFF)
    async with running(connection):
        error = connection.last_error

    logged = [record.getMessage() for record in caplog.records]
    assert "MCP server argy stderr: started with --api-key ***" in logged
    assert not [message for message in logged if "sekrit-123" in message]
    assert error == "the server process exited or closed its output; its last stderr line: ***"


async def test_protocol_errors_fail_the_call_with_secrets_masked() -> None:
    connection = ServerConnection(fake_server_config("strict", env={"TOKEN": "tok-424242"}), **FAST_BACKOFF)
    async with running(connection):
        with pytest.raises(ToolCallFailed) as caught:
            await connection.call_tool("fail", {"message": "token tok-424242 is wrong", "protocol": True})
        status = connection.status

    assert caught.value.reason == "the server answered with MCP error -32603: token *** is wrong"
    assert status == "healthy"
