"""Helpers for the MCP tests: test-server configs and a change hook tests can wait on."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypedDict

import anyio

from orchestrator.mcp.types import ServerConfig

REPO_ROOT: Final = Path(__file__).resolve().parents[3]


class BackoffSettings(TypedDict):
    backoff_initial: float
    backoff_max: float


FAST_BACKOFF: Final[BackoffSettings] = {"backoff_initial": 0.05, "backoff_max": 0.5}
"""Reconnect quickly: tests wait for reconnections."""


def fake_server_config(server_id: str, *, name: str | None = None, **overrides: Any) -> ServerConfig:
    """A stdio server running ``tests.fakes.mcp_test_server``; its ``name`` tool answers ``name`` (or the id)."""
    args = ("-m", "tests.fakes.mcp_test_server", "--name", name or server_id)
    return ServerConfig(
        id=server_id, transport="stdio", command=sys.executable, args=args, cwd=str(REPO_ROOT), **overrides
    )


class Changes:
    """An ``on_change`` hook that counts calls and lets a test wait, with a bound, until a condition holds."""

    def __init__(self) -> None:
        self.count = 0
        self._event: anyio.Event | None = None

    def __call__(self) -> None:
        self.count += 1
        if self._event is not None:
            self._event.set()
            self._event = None

    async def until(self, condition: Callable[[], bool], *, within: float = 10.0) -> None:
        """Return once ``condition()`` is true, re-checking after every change.

        Raises:
            TimeoutError: it did not become true within ``within`` seconds.
        """
        with anyio.fail_after(within):
            while not condition():
                if self._event is None:
                    self._event = anyio.Event()
                await self._event.wait()
