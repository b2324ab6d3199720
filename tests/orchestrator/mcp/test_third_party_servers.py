"""Servers we did not write, installed from PyPI, over stdio."""

from __future__ import annotations

import json
import sys

from orchestrator.mcp.registry import McpRegistry
from orchestrator.mcp.types import ServerConfig
from tests.orchestrator.mcp.helpers import FAST_BACKOFF


async def test_mcp_server_time_answers_get_current_time() -> None:
    config = ServerConfig(id="time", transport="stdio", command=sys.executable, args=("-m", "mcp_server_time"))
    async with McpRegistry([config], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        names = {spec.name for spec in registry.tools()}
        output = await registry.call_tool("time__get_current_time", {"timezone": "UTC"})

    assert {"time__get_current_time", "time__convert_time"} <= names
    assert not output.is_error
    assert json.loads(output.text)["timezone"] == "UTC"


async def test_a_console_script_installed_beside_us_is_found_without_an_activated_venv() -> None:
    # The servers file names the script; the PATH the server gets does not lead to our venv.
    config = ServerConfig(id="time", transport="stdio", command="mcp-server-time", env={"PATH": "/nonexistent"})
    async with McpRegistry([config], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        info = registry.server("time")

    assert (info.status, info.last_error) == ("healthy", None)
