"""Runtime MCP server registrations, approvals and tool-list changes, the same on every replica.

The database holds the registrations and approvals; messages on the ``servers`` channel only say that something
changed, and each replica then reads the database again (``reconcile``). So a message lost while Redis was away
costs nothing once the bus resynchronises.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import anyio
from anyio.abc import TaskStatus

from orchestrator.cluster.bus import Message, MessageBus
from orchestrator.errors import Conflict, ServerNotFound
from orchestrator.mcp.registry import McpRegistry
from orchestrator.mcp.sources import from_registration, with_service_token
from orchestrator.memory.types import ServerRegistrationStore
from orchestrator.settings import Settings

logger = logging.getLogger(__name__)

CHANNEL = "servers"
Change = Literal["registrations", "tools", "approvals"]


class ServerSync:
    """Tells the other replicas about server changes made here, and applies theirs.

    Create it, give it the registry (``attach``), and run :meth:`run` in a task group: it publishes what
    :meth:`announce` queued, so callers (API handlers, MCP connections) never wait on Redis.
    """

    def __init__(self, bus: MessageBus, store: ServerRegistrationStore, settings: Settings) -> None:
        self._bus = bus
        self._store = store
        self._settings = settings
        self._registry: McpRegistry | None = None
        self._send, self._outbox = anyio.create_memory_object_stream[Message](math.inf)
        bus.subscribe(CHANNEL, self._on_message)
        bus.on_resync(self.reconcile)

    def attach(self, registry: McpRegistry) -> None:
        self._registry = registry

    def announce(self, change: Change, server_id: str | None = None) -> None:
        """Queue a message for the other replicas; returns at once."""
        self._send.send_nowait({"change": change, "server_id": server_id})

    def tools_changed(self, server_id: str) -> None:
        """For ``McpRegistry(on_tools_changed=...)``: a server listed different tools here."""
        self.announce("tools", server_id)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with self._outbox:
            async for message in self._outbox:
                await self._bus.publish(CHANNEL, message)

    async def reconcile(self) -> None:
        """Make this replica's run-time servers those registered in the database."""
        registry = self._registry
        if registry is None:
            return
        registrations = {registration.id: registration for registration in await self._store.list_registrations()}
        servers = {info.id: info for info in registry.servers()}
        token = self._settings.mcp_service_token
        for server_id, registration in registrations.items():
            if server_id in servers:
                continue
            config = with_service_token(
                from_registration(registration, self._settings), token.get_secret_value() if token else None
            )
            try:
                await registry.add(config)
            except Conflict:
                continue
            logger.info("server %s added on another replica; connecting", server_id)
        for server_id, info in servers.items():
            if info.source == "runtime" and server_id not in registrations:
                try:
                    await registry.remove(server_id)
                except ServerNotFound:
                    continue
                logger.info("server %s removed on another replica", server_id)

    async def _on_message(self, message: Message) -> None:
        registry = self._registry
        if registry is None:
            return
        change = message.get("change")
        server_id = message.get("server_id")
        if change == "registrations":
            await self.reconcile()
        elif change == "tools" and isinstance(server_id, str):
            registry.refresh(server_id)
        elif change == "approvals":
            await registry.reload_approvals()
