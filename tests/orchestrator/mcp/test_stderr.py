from __future__ import annotations

import logging
from typing import TextIO

import anyio
import anyio.to_thread
import pytest

from orchestrator.mcp.stderr import capture_stderr


def write_noise(errlog: TextIO) -> None:
    for number in range(1000):
        print(f"line {number} " + "x" * 1000, file=errlog)
    print("partial without newline", end="", file=errlog)
    errlog.flush()


async def test_stderr_lines_are_logged_with_a_cap_and_the_last_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.mcp.stderr")

    async with capture_stderr("noisy") as tail:
        # A megabyte is far more than a pipe holds: this only finishes if the pipe is drained meanwhile.
        with anyio.fail_after(10):
            await anyio.to_thread.run_sync(write_noise, tail.errlog)

    assert tail.last_line == "partial without newline"
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) <= 25
    assert logged[0].startswith("MCP server noisy stderr: line 0 ")
    assert len(logged[0]) < 600
    assert any("lines not logged" in message for message in logged)


async def test_logged_stderr_lines_have_the_servers_secrets_masked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.mcp.stderr")

    async with capture_stderr("leaky", secrets=["hunter22"]) as tail:
        print("login with hunter22 refused", file=tail.errlog, flush=True)

    assert [record.getMessage() for record in caplog.records] == ["MCP server leaky stderr: login with *** refused"]


async def test_past_the_rate_limit_lines_are_counted_and_only_the_last_is_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.mcp.stderr")

    async with capture_stderr("chatty") as tail:
        tail.errlog.write("".join(f"line {number}\n" for number in range(100)))
        tail.errlog.flush()

    logged = [record.getMessage() for record in caplog.records]
    assert tail.last_line == "line 99"
    assert logged[:20] == [f"MCP server chatty stderr: line {number}" for number in range(20)]
    assert logged[20:] == ["MCP server chatty: 80 more stderr lines not logged"]
