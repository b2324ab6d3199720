"""The check every MCP tool call passes before it runs (the approvals service is the real one)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from orchestrator.loop.events import TurnEvent
from orchestrator.mcp.types import ToolSpec


@dataclass(frozen=True, slots=True)
class GatedCall:
    user_id: str
    conversation_id: str
    tool_call_id: str
    name: str
    arguments: str
    """The arguments exactly as the model wrote them (JSON text)."""
    spec: ToolSpec | None
    """The tool as offered; ``None`` for a name no server offers (the call then fails on its own)."""


class ToolGate(Protocol):
    async def admit(self, call: GatedCall, emit: Callable[[TurnEvent], Awaitable[None]]) -> str | None:
        """Wait until the call may run (``None``), or return what the model is told instead of a result."""
        ...
