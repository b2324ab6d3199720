"""Servers each user signs in to (OAuth 2.1): every user's own connection, opened with their grant.

A protected server is one whose entry says ``oauth``, or that answered 401 to the registry's own connection. No
connection of the registry's carries anyone's tokens; each user who signed in gets a ``ServerConnection`` of their
own, authenticated by ``GrantAuth``, opened when they first need it and closed after ``idle_seconds`` unused.

A user who has not signed in is still offered the server's tools as another user's connection last listed them
(or, before anyone has, a ``sign_in`` tool), so the model can reach for them; the call then shows the server's sign-in
page in the conversation, waits for the user, and goes on with their fresh connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import anyio
from mcp_types import CallToolResult, TextContent

from orchestrator.errors import ServerAuthorizationRequired
from orchestrator.mcp.connection import ServerConnection
from orchestrator.mcp.naming import expose_name
from orchestrator.mcp.oauth.signins import SignIns
from orchestrator.mcp.oauth.tokens import GrantAuth, TokenRefresher
from orchestrator.mcp.types import ProgressCallback, ServerConfig, ServerRequests, ToolSpec

logger = logging.getLogger(__name__)

SIGN_IN_TOOL: Final = "sign_in"
"""The server's own name of the tool offered for a protected server whose tools nobody has listed yet."""

_GRANTED_CACHE_SECONDS: Final = 30.0
"""How long "this user holds a grant on these servers" is trusted before the database is asked again (a sign-in
on another replica shows up within this)."""


def sign_in_tool(server_id: str) -> ToolSpec:
    return ToolSpec(
        name=expose_name(server_id, SIGN_IN_TOOL),
        server_id=server_id,
        tool=SIGN_IN_TOOL,
        description=(
            f"Sign the user in to the MCP server '{server_id}', which needs each user's own sign-in before its tools "
            "can be used. Call it when the user asks for something this server may do; afterwards its tools are "
            "offered."
        ),
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        annotations={"readOnlyHint": True},
    )


StartConnection = Callable[[ServerConfig, GrantAuth], ServerConnection]


class ProtectedServers:
    """Users' own connections to protected servers.

    Args:
        sign_ins: runs sign-ins; ``None`` when the service keeps no grants (then protected servers only say so).
        refresher: hands out the users' fresh tokens.
        start: makes a connection and starts its task (in the registry's task group).
        idle_seconds: a user's connection unused this long is closed.
    """

    def __init__(
        self,
        sign_ins: SignIns | None,
        refresher: TokenRefresher | None,
        *,
        start: StartConnection,
        idle_seconds: float,
    ) -> None:
        self._sign_ins = sign_ins
        self._refresher = refresher
        self._start = start
        self._idle_seconds = idle_seconds
        self._connections: dict[tuple[str, str], ServerConnection] = {}
        self._last_used: dict[tuple[str, str], float] = {}
        self._granted: dict[str, tuple[float, frozenset[str]]] = {}

    @property
    def sign_ins(self) -> SignIns | None:
        return self._sign_ins

    def connections(self) -> Mapping[tuple[str, str], ServerConnection]:
        """Every open user connection, by (server id, user id)."""
        return self._connections

    def connection(self, server_id: str, user_id: str) -> ServerConnection | None:
        return self._connections.get((server_id, user_id))

    async def granted(self, user_id: str) -> frozenset[str]:
        """The servers the user holds a grant on (cached briefly)."""
        if self._sign_ins is None:
            return frozenset()
        cached = self._granted.get(user_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        servers = frozenset(await self._sign_ins.vault.granted_servers(user_id))
        self._granted[user_id] = (time.monotonic() + _GRANTED_CACHE_SECONDS, servers)
        return servers

    async def open(self, config: ServerConfig, user_id: str) -> ServerConnection | None:
        """The user's connection to the server, opened (and awaited) if they hold a grant; else ``None``."""
        key = (config.id, user_id)
        connection = self._connections.get(key)
        if connection is not None and connection.status == "auth_required":
            # Refused earlier; the user may have signed in since (maybe through another replica): try afresh.
            self.close(config.id, user_id)
            connection = None
        if connection is None:
            if (
                self._refresher is None
                or self._sign_ins is None
                or not await self._sign_ins.signed_in(user_id, config.id)
            ):
                return None
            connection = self._start(config, GrantAuth(self._refresher, user_id, config.id))
            self._connections[key] = connection
        self._last_used[key] = time.monotonic()
        with anyio.move_on_after(config.connect_timeout_seconds + 5):
            await connection.wait_settled()
        return connection

    def close(self, server_id: str, user_id: str) -> None:
        """Close the user's connection (after a new sign-in, a disconnect, or when idle)."""
        key = (server_id, user_id)
        connection = self._connections.pop(key, None)
        self._last_used.pop(key, None)
        self._granted.pop(user_id, None)
        if connection is not None:
            connection.stop()

    def close_server(self, server_id: str) -> None:
        for key in [key for key in self._connections if key[0] == server_id]:
            self.close(*key)

    def close_all(self) -> None:
        for key in list(self._connections):
            self.close(*key)

    async def close_idle(self) -> None:
        """Close, every little while, the connections nobody has used for ``idle_seconds``; runs until cancelled."""
        while True:
            await anyio.sleep(min(60.0, self._idle_seconds / 4))
            now = time.monotonic()
            for key, connection in list(self._connections.items()):
                if not connection.busy and now - self._last_used.get(key, now) >= self._idle_seconds:
                    logger.info("closing the idle connection of user %s to MCP server %s", key[1], key[0])
                    self.close(*key)

    async def call(
        self,
        config: ServerConfig,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        user_id: str | None,
        on_progress: ProgressCallback | None,
        requests: ServerRequests | None,
    ) -> CallToolResult:
        """Run ``tool`` on the user's own connection, signing them in first (once) when the server wants it.

        Raises:
            ServerAuthorizationRequired: the user is not signed in and cannot be asked now (no conversation), or
                did not sign in.
            ServerAuthorizationFailed: the sign-in failed.
            ServerUnavailable, ToolTimeout, ToolCallFailed: as for any tool call.
        """
        if user_id is None:
            raise ServerAuthorizationRequired(config.id)
        asked = False
        while True:
            connection = await self.open(config, user_id)
            try:
                if connection is None or connection.status == "auth_required":
                    challenge = connection.challenge if connection is not None else None
                    raise ServerAuthorizationRequired(
                        config.id,
                        challenge.reason if challenge else None,
                        scope=challenge.scope if challenge else None,
                    )
                if tool == SIGN_IN_TOOL and all(spec.tool != SIGN_IN_TOOL for spec in connection.tools):
                    return _signed_in(config.id, connection.tools)
                return await connection.call_tool(
                    tool, arguments, user_id=user_id, on_progress=on_progress, requests=requests
                )
            except ServerAuthorizationRequired as exc:
                if asked or requests is None or self._sign_ins is None:
                    raise
                asked = True
                await self._sign_in(config, user_id, requests, scope=exc.scope)
                self.close(config.id, user_id)

    async def _sign_in(
        self, config: ServerConfig, user_id: str, requests: ServerRequests, *, scope: str | None
    ) -> None:
        assert self._sign_ins is not None
        pending = await self._sign_ins.begin(user_id, config, scope=scope)
        if not await requests.authorize(config.id, pending.url, pending.wait):
            pending.cancel()
            raise ServerAuthorizationRequired(config.id, "the sign-in was not completed")


def _signed_in(server_id: str, tools: tuple[ToolSpec, ...]) -> CallToolResult:
    names = ", ".join(spec.name for spec in tools) or "none yet"
    text = f"The user is signed in to {server_id}. Its tools are now available: {names}."
    return CallToolResult(content=[TextContent(type="text", text=text)])
