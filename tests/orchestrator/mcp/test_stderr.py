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
