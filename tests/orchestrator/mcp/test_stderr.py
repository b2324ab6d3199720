from __future__ import annotations

import logging

import pytest

from orchestrator.mcp.stderr import capture_stderr


async def test_stderr_lines_are_logged_with_a_cap_and_the_last_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.mcp.stderr")

    async with capture_stderr("noisy") as tail:
        for number in range(1000):
            print(f"line {number} " + "x" * 1000, file=tail.errlog)
        print("partial without newline", end="", file=tail.errlog)
        tail.errlog.flush()

    assert tail.last_line == "partial without newline"
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) <= 25
    assert logged[0].startswith("MCP server noisy stderr: line 0 ")
    assert len(logged[0]) < 600
    assert any("lines not logged" in message for message in logged)
