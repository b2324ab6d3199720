"""The registry of MCP servers: the loop's :class:`~orchestrator.mcp.types.ToolSource`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager, AsyncExitStack
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Protocol, Self

import anyio
from anyio.abc import TaskGroup
from mcp_types import CallToolResult, GetPromptResult, ReadResourceResult

from orchestrator.errors import (
    ConfigurationError,
    Conflict,
    ServerAuthorizationRequired,
    ServerNotFound,
    ToolChangeNotFound,
    ToolDefinitionChanged,
    ToolNotFound,
    ToolWithheld,
)
from orchestrator.mcp.connection import ServerConnection
from orchestrator.mcp.oauth.signins import SignIns
from orchestrator.mcp.oauth.tokens import GrantAuth, TokenRefresher
from orchestrator.mcp.pinning import ToolApprovals, WithheldTool
from orchestrator.mcp.protected import ProtectedServers, sign_in_tool
from orchestrator.mcp.results import render_result
from orchestrator.mcp.types import (
    ProgressCallback,
    PromptSpec,
    ResourceSpec,
    ServerConfig,
    ServerInfo,
    ServerRequests,
    ToolOutput,
    ToolSpec,
)
from orchestrator.mcp.unicode import clean_tool_spec
from orchestrator.memory.types import ToolApproval

logger = logging.getLogger(__name__)


class ObservedCall(Protocol):
    def finished(self, *, is_error: bool) -> None:
        """The server answered; ``is_error``: with a tool error."""
        ...


class ToolCallObserver(Protocol):
    """Watches tool calls (metrics, traces): the call runs inside ``tool_call``; an exception is a failure."""

    def tool_call(
        self, server_id: str, tool: str, arguments: Mapping[str, Any]
    ) -> AbstractContextManager[ObservedCall]: ...


_STOP_TIMEOUT: Final = 10.0
"""Seconds to wait for a removed server's connection to close (a stdio server gets a few to exit)."""


class McpRegistry:
    """Every configured MCP server, connected concurrently, and their tools under exposed names.

    ``async with McpRegistry(configs) as registry`` starts every server in the background and returns at once: a
    slow, down or broken server never delays or breaks the others. Leaving the block closes every connection.

    Args:
        configs: the servers to start with; disabled ones are listed as ``stopped`` and not started.
        tool_result_max_chars: characters of a tool result the model sees; the rest is cut with a marker.
        backoff_initial: first delay, in seconds, before reconnecting to a failed server.
        backoff_max: largest delay, in seconds, between reconnection attempts.
        on_change: called (synchronously) whenever a server's status or the set of tools changes.
        approvals: the approved tool definitions; a tool whose definition differs is withheld from :meth:`tools`
            and refused by :meth:`call_tool` (see ``orchestrator.mcp.pinning``). ``None``: no pinning.
        on_tools_changed: called with a server's id when listing its tools again found them changed.
        observer: told about every tool call (telemetry); see :class:`ToolCallObserver`.
        sign_ins: signs users in to protected servers (``orchestrator.mcp.protected``); ``None``: such servers are
            listed, but nobody can use them.
        refresher: the users' tokens for their own connections to protected servers.
        user_idle_seconds: a user's own connection unused this long is closed.
    """

    def __init__(
        self,
        configs: Iterable[ServerConfig] = (),
        *,
        tool_result_max_chars: int = 20_000,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        on_change: Callable[[], None] | None = None,
        approvals: ToolApprovals | None = None,
        on_tools_changed: Callable[[str], None] | None = None,
        observer: ToolCallObserver | None = None,
        sign_ins: SignIns | None = None,
        refresher: TokenRefresher | None = None,
        user_idle_seconds: float = 900.0,
        max_concurrent_calls: int = 4,
    ) -> None:
        self._initial = list(configs)
        self._on_tools_changed = on_tools_changed
        self._observer = observer
        self._max_chars = tool_result_max_chars
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._on_change = on_change
        self._connections: dict[str, ServerConnection] = {}
        self._tool_index: dict[str, tuple[ServerConnection, str]] = {}
        self._tool_list: list[ToolSpec] = []
        self._approvals = approvals
        self._withheld: dict[str, WithheldTool] = {}  # by exposed name
        self._cleaned_specs: dict[str, tuple[ToolSpec, ToolSpec]] = {}  # exposed name -> (as listed, as offered)
        self._exit_stack: AsyncExitStack | None = None
        self._task_group: TaskGroup | None = None
        self._protected = ProtectedServers(
            sign_ins, refresher, start=self._start_user_connection, idle_seconds=user_idle_seconds
        )
        self._protected_index: dict[str, tuple[str, str]] = {}  # exposed name -> (server id, tool)
        self._known_protected: dict[str, tuple[ToolSpec, ...]] = {}  # server id -> tools as last listed for anyone
        self._user_tools: dict[tuple[str, str], list[ToolSpec]] = {}  # (server id, user id) -> tools offered
        self._reaper: anyio.CancelScope | None = None
        self._max_concurrent_calls = max_concurrent_calls
        self._limiters: dict[str, anyio.CapacityLimiter] = {}  # server id -> its calls running at once
        ids = [config.id for config in self._initial]
        duplicates = sorted({server_id for server_id in ids if ids.count(server_id) > 1})
        if duplicates:
            raise ConfigurationError(
                [f"MCP server id {server_id!r} is used more than once" for server_id in duplicates]
            )

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            self._task_group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(self._stop_all)  # runs first on exit, so the task group's join finds nothing to wait for
            if self._approvals is not None:
                # Loaded before any server starts, so no tool is ever reviewed against approvals not yet read.
                await self._task_group.start(self._approvals.run, self._changed)
                stack.callback(self._approvals.stop)
            for config in self._initial:
                self._start(config)
            self._reaper = anyio.CancelScope()
            self._task_group.start_soon(self._close_idle_user_connections, self._reaper, name="mcp-user-connections")
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # The task group is closed as if the block had ended normally: the connections are stopped first, and the
        # block's own exception then propagates unchanged instead of wrapped in an exception group.
        if self._exit_stack is not None:
            stack, self._exit_stack = self._exit_stack, None
            await stack.aclose()
        self._task_group = None

    # --- the ToolSource protocol ------------------------------------------------------------------------------------

    def tools(self) -> list[ToolSpec]:
        """Tools of the healthy servers, in server order then each server's own order."""
        return list(self._tool_list)

    async def tools_for(self, user_id: str | None) -> list[ToolSpec]:
        """:meth:`tools`, plus each protected server's tools as ``user_id`` sees them.

        Those of the user's own connection when they are signed in (it is opened here if it is not yet); otherwise
        the tools another user's connection last listed, or a ``sign_in`` tool, which sign the user in when called.
        """
        listing = self.tools()
        protected = [c for c in self._connections.values() if c.status == "auth_required"]
        if not protected or user_id is None:
            return listing
        granted = await self._protected.granted(user_id)
        for shared in protected:
            server_id = shared.id
            connection = self._protected.connection(server_id, user_id)
            if connection is None and server_id in granted:
                connection = await self._protected.open(shared.config, user_id)
            if connection is not None and connection.status == "healthy":
                listing.extend(self._user_tools.get((server_id, user_id), ()))
            elif connection is not None and connection.status in ("connecting", "unhealthy"):
                continue  # signed in, but the server is down: nothing to offer right now
            else:
                listing.extend(self._known_protected.get(server_id) or (sign_in_tool(server_id),))
        return listing

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any],
        *,
        user_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        requests: ServerRequests | None = None,
    ) -> ToolOutput:
        """Run the tool exposed as ``name``; see :class:`~orchestrator.mcp.types.ToolSource`.

        Raises:
            ToolNotFound: no server has listed a tool under ``name``.
            ToolWithheld: the tool's definition changed since it was approved, and the change is not approved yet.
            ServerUnavailable: the tool's server is down (it listed the tool when it was last connected).
            ToolTimeout: the call did not finish within the server's tool timeout (it was cancelled on the server).
            ToolCallFailed: the connection failed during the call, or the server answered with a protocol error.
        """
        entry = self._tool_index.get(name)
        protected = self._protected_index.get(name) if entry is None else None
        if entry is None and protected is None:
            change = self._withheld.get(name)
            if change is not None:
                raise ToolWithheld(change.server_id, change.tool)
            raise ToolNotFound(name)
        if entry is not None:
            connection, tool = entry
            server_id = connection.id
            config = connection.config

            def call() -> Awaitable[CallToolResult]:
                return connection.call_tool(
                    tool, arguments, user_id=user_id, on_progress=on_progress, requests=requests
                )
        else:
            assert protected is not None
            server_id, tool = protected
            config = self._connection(server_id).config

            def call() -> Awaitable[CallToolResult]:
                return self._protected.call(
                    config, tool, arguments, user_id=user_id, on_progress=on_progress, requests=requests
                )

        async with self._limiter(config):
            if self._observer is None:
                result = await call()
            else:
                with self._observer.tool_call(server_id, tool, arguments) as observed:
                    result = await call()
                    observed.finished(is_error=bool(result.is_error))
        output = render_result(result, max_chars=self._max_chars)
        if output.hidden_characters_removed:
            logger.warning(
                "MCP server %s: removed %d invisible characters from a result of tool %s",
                server_id,
                output.hidden_characters_removed,
                tool,
            )
        return output

    # --- servers ----------------------------------------------------------------------------------------------------

    def servers(self) -> list[ServerInfo]:
        return [connection.info() for connection in self._connections.values()]

    def server(self, server_id: str) -> ServerInfo:
        """Raises: ServerNotFound: no server has this id."""
        return self._connection(server_id).info()

    async def servers_for(self, user_id: str) -> list[ServerInfo]:
        """:meth:`servers`, with each protected server as ``user_id`` sees it (their own connection)."""
        granted = await self._protected.granted(user_id)
        return [self._info_for(connection, user_id, granted) for connection in self._connections.values()]

    async def server_for(self, server_id: str, user_id: str) -> ServerInfo:
        """Raises: ServerNotFound."""
        connection = self._connection(server_id)
        return self._info_for(connection, user_id, await self._protected.granted(user_id))

    def config(self, server_id: str) -> ServerConfig:
        """Raises: ServerNotFound."""
        return self._connection(server_id).config

    def is_protected(self, server_id: str) -> bool:
        """Whether each user signs in to the server. Raises: ServerNotFound."""
        return self._connection(server_id).status == "auth_required"

    @property
    def sign_ins(self) -> SignIns | None:
        return self._protected.sign_ins

    def close_user_connection(self, server_id: str, user_id: str) -> None:
        """Close the user's own connection to a protected server (after they signed in anew or disconnected)."""
        self._protected.close(server_id, user_id)
        self._changed()

    async def add(self, config: ServerConfig) -> ServerInfo:
        """Start a server; returns at once with its status ``connecting`` (or ``stopped`` when disabled).

        Raises:
            Conflict: a server with this id exists.
        """
        if config.id in self._connections:
            raise Conflict(f"an MCP server with id {config.id!r} already exists")
        connection = self._start(config)
        self._changed()
        return connection.info()

    async def remove(self, server_id: str) -> None:
        """Close a server's connection and forget it; its tools disappear at once.

        Raises:
            ServerNotFound: no server has this id.
        """
        connection = self._connection(server_id)
        del self._connections[server_id]
        self._limiters.pop(server_id, None)
        connection.stop()
        self._protected.close_server(server_id)
        self._changed()
        with anyio.move_on_after(_STOP_TIMEOUT) as scope:
            await connection.wait_stopped()
        if scope.cancelled_caught:
            logger.warning("MCP server %s did not close within %gs", server_id, _STOP_TIMEOUT)

    def refresh(self, server_id: str) -> None:
        """List a server's tools again (another replica saw them change); unknown or down servers are ignored."""
        connection = self._connections.get(server_id)
        if connection is not None:
            connection.request_refresh()

    async def reload_approvals(self) -> None:
        """Read the approved tool definitions again (another replica approved a change) and review every tool."""
        if self._approvals is not None:
            await self._approvals.reload()
            self._changed()

    @property
    def settled(self) -> bool:
        """Whether every server has finished its first connection attempt, successfully or not."""
        return all(connection.settled for connection in self._connections.values())

    async def wait_until_settled(self, timeout: float) -> bool:  # noqa: ASYNC109 - answers False instead of raising
        """Wait until :attr:`settled`, for at most ``timeout`` seconds; returns whether it is."""
        with anyio.move_on_after(timeout):
            for connection in list(self._connections.values()):
                await connection.wait_settled()
        return self.settled

    # --- approved tool definitions ----------------------------------------------------------------------------------

    def withheld(self) -> list[WithheldTool]:
        """Tools kept from the model because their server changed their definition since it was approved."""
        return list(self._withheld.values())

    async def approve_tool(self, server_id: str, tool: str, *, by: str, seen_hash: str | None = None) -> ToolApproval:
        """Approve the current definition of a withheld tool; it is offered to the model again at once.

        Args:
            server_id: the tool's server.
            tool: the server's own name for the tool.
            by: the approving admin's user id.
            seen_hash: the ``definition_hash`` the admin reviewed; when given, it must still be the current one.

        Raises:
            ToolChangeNotFound: the tool is not withheld (no changed definition awaits approval).
            ToolDefinitionChanged: ``seen_hash`` is not the hash of the tool's current definition.
        """
        change = next((c for c in self._withheld.values() if (c.server_id, c.tool) == (server_id, tool)), None)
        if change is None or self._approvals is None:
            raise ToolChangeNotFound(server_id, tool)
        if seen_hash is not None and seen_hash != change.current_hash:
            raise ToolDefinitionChanged(server_id, tool, seen_hash, change.current_hash)
        approval = await self._approvals.approve(change, by=by)
        self._changed()
        return approval

    # --- resources and prompts --------------------------------------------------------------------------------------

    def resources(self, user_id: str | None = None) -> list[ResourceSpec]:
        """Every healthy server's resources, and its resource templates (those of ``user_id``'s own connections)."""
        listed: list[ResourceSpec] = []
        for connection in self._catalog_connections(user_id):
            catalog = connection.catalog
            listed.extend(catalog.resources)
            listed.extend(catalog.resource_templates)
        return listed

    def prompts(self, user_id: str | None = None) -> list[PromptSpec]:
        return [prompt for connection in self._catalog_connections(user_id) for prompt in connection.catalog.prompts]

    def resource_updates(self, server_id: str, user_id: str | None = None) -> Mapping[str, datetime]:
        """Raises: ServerNotFound."""
        connection = self._connection(server_id)
        if connection.status == "auth_required":
            own = self._protected.connection(server_id, user_id) if user_id is not None else None
            return own.resource_updates if own is not None else {}
        return connection.resource_updates

    async def read_resource(self, server_id: str, uri: str, user_id: str | None = None) -> ReadResourceResult:
        """Raises: ServerNotFound, ServerAuthorizationRequired, ServerUnavailable, ServerRequestFailed."""
        return await (await self._usable_connection(server_id, user_id)).read_resource(uri)

    async def get_prompt(
        self, server_id: str, name: str, arguments: Mapping[str, str], user_id: str | None = None
    ) -> GetPromptResult:
        """Raises: ServerNotFound, ServerAuthorizationRequired, ServerUnavailable, ServerRequestFailed."""
        return await (await self._usable_connection(server_id, user_id)).get_prompt(name, arguments)

    async def subscribe_resource(self, server_id: str, uri: str, user_id: str | None = None) -> None:
        """Raises: ServerNotFound, ServerAuthorizationRequired, ServerUnavailable, ServerRequestFailed."""
        await (await self._usable_connection(server_id, user_id)).subscribe_resource(uri)

    # --- internals --------------------------------------------------------------------------------------------------

    def _limiter(self, config: ServerConfig) -> anyio.CapacityLimiter:
        """The server's limit of calls at once (``maxConcurrentCalls``); calls beyond it wait their turn."""
        limit = config.max_concurrent_calls or self._max_concurrent_calls
        limiter = self._limiters.get(config.id)
        if limiter is None:
            limiter = self._limiters[config.id] = anyio.CapacityLimiter(limit)
        elif limiter.total_tokens != limit:
            limiter.total_tokens = limit  # resized in place: calls already running still count
        return limiter

    def _connection(self, server_id: str) -> ServerConnection:
        connection = self._connections.get(server_id)
        if connection is None:
            raise ServerNotFound(server_id)
        return connection

    def _start(self, config: ServerConfig) -> ServerConnection:
        if self._task_group is None:
            raise RuntimeError("McpRegistry is not running; use it as 'async with McpRegistry(...)'")
        connection = ServerConnection(
            config,
            backoff_initial=self._backoff_initial,
            backoff_max=self._backoff_max,
            on_change=self._changed,
            on_tools_changed=self._on_tools_changed,
        )
        self._connections[config.id] = connection
        if config.oauth is not None and config.enabled:
            connection.require_sign_in()  # no connection of ours: each user connects with their own sign-in
        else:
            self._task_group.start_soon(connection.run, name=f"mcp-server-{config.id}")
        return connection

    def _start_user_connection(self, config: ServerConfig, auth: GrantAuth) -> ServerConnection:
        if self._task_group is None:
            raise RuntimeError("McpRegistry is not running; use it as 'async with McpRegistry(...)'")
        connection = ServerConnection(
            config,
            backoff_initial=self._backoff_initial,
            backoff_max=self._backoff_max,
            on_change=self._changed,
            auth=auth,
        )
        self._task_group.start_soon(connection.run, name=f"mcp-server-{config.id}-user")
        return connection

    async def _close_idle_user_connections(self, scope: anyio.CancelScope) -> None:
        with scope:
            await self._protected.close_idle()

    def _stop_all(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        self._protected.close_all()
        for connection in self._connections.values():
            connection.stop()

    def _catalog_connections(self, user_id: str | None) -> list[ServerConnection]:
        """The connections whose resources and prompts ``user_id`` sees: everyone's, and their own."""
        connections = list(self._connections.values())
        if user_id is not None:
            connections.extend(c for (_, user), c in self._protected.connections().items() if user == user_id)
        return connections

    async def _usable_connection(self, server_id: str, user_id: str | None) -> ServerConnection:
        """The connection that serves ``user_id`` for ``server_id``: the shared one, or their own when protected."""
        shared = self._connection(server_id)
        if shared.status != "auth_required":
            return shared
        connection = await self._protected.open(shared.config, user_id) if user_id is not None else None
        if connection is None or connection.status == "auth_required":
            raise ServerAuthorizationRequired(server_id)
        return connection

    def _info_for(self, connection: ServerConnection, user_id: str, granted: frozenset[str]) -> ServerInfo:
        if connection.status != "auth_required":
            return connection.info()
        own = self._protected.connection(connection.id, user_id)
        shown = own.info() if own is not None else connection.info()
        sign_ins = self._protected.sign_ins
        last_error = sign_ins.last_error(user_id, connection.id) if sign_ins is not None else None
        return replace(
            shown,
            source=connection.config.source,
            sign_in_required=True,
            signed_in=connection.id in granted,
            last_error=last_error or (shown.last_error if own is not None else None),
        )

    def _review(
        self, spec: ToolSpec, withheld: dict[str, WithheldTool], cleaned: dict[str, tuple[ToolSpec, ToolSpec]]
    ) -> ToolSpec | None:
        """``spec`` as offered to the model, or ``None`` when its definition changed since it was approved."""
        change = self._approvals.review(spec) if self._approvals is not None else None
        if change is not None:
            withheld[spec.name] = change
            return None
        offered = self._clean(spec)
        cleaned[spec.name] = (spec, offered)
        return offered

    def _clean(self, spec: ToolSpec) -> ToolSpec:
        """``spec`` as the model may see it: without invisible characters (warned about once per listing)."""
        previous = self._cleaned_specs.get(spec.name)
        if previous is not None and previous[0] == spec:
            return previous[1]
        offered = clean_tool_spec(spec)
        if offered.hidden_characters_removed:
            logger.warning(
                "MCP server %s: removed %d invisible characters from the definition of tool %s",
                spec.server_id,
                offered.hidden_characters_removed,
                spec.tool,
            )
        return offered

    def _changed(self) -> None:
        """Rebuild the tool index; called by connections whenever their status or tools change."""
        index: dict[str, tuple[ServerConnection, str]] = {}
        listing: list[ToolSpec] = []
        withheld: dict[str, WithheldTool] = {}
        cleaned: dict[str, tuple[ToolSpec, ToolSpec]] = {}
        protected: list[str] = []
        for connection in self._connections.values():
            if connection.status == "auth_required":
                protected.append(connection.id)  # its tools come from users' own connections, below
                continue
            healthy = connection.status == "healthy"
            # A down server's tools stay routable so a call reports ServerUnavailable, not an unknown tool.
            for spec in connection.known_tools:
                if spec.name in index or spec.name in withheld:
                    logger.error("tool name %s is exposed twice; keeping the first", spec.name)
                    continue
                offered = self._review(spec, withheld, cleaned)
                if offered is None:
                    continue
                index[spec.name] = (connection, spec.tool)
                if healthy:
                    listing.append(offered)
        known = {server_id: tools for server_id, tools in self._known_protected.items() if server_id in protected}
        user_tools: dict[tuple[str, str], list[ToolSpec]] = {}
        for key, connection in self._protected.connections().items():
            if key[0] not in protected:
                continue
            offered_tools = [
                offered
                for spec in connection.known_tools
                if (offered := self._review(spec, withheld, cleaned)) is not None
            ]
            if connection.status == "healthy":
                user_tools[key] = offered_tools
                if offered_tools:
                    known[key[0]] = tuple(offered_tools)
        protected_index: dict[str, tuple[str, str]] = {}
        for server_id in protected:
            for spec in (*known.get(server_id, ()), sign_in_tool(server_id)):
                if spec.name not in index:
                    protected_index.setdefault(spec.name, (server_id, spec.tool))
        self._tool_index = index
        self._tool_list = listing
        self._withheld = withheld
        self._cleaned_specs = cleaned
        self._known_protected = known
        self._user_tools = user_tools
        self._protected_index = protected_index
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:  # boundary: a faulty observer must not break the registry
                logger.exception("the MCP registry's on_change callback failed")
