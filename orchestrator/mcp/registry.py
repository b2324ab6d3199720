"""The registry of MCP servers: the loop's :class:`~orchestrator.mcp.types.ToolSource`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, AsyncExitStack
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Protocol, Self

import anyio
from anyio.abc import TaskGroup
from mcp_types import GetPromptResult, ReadResourceResult

from orchestrator.errors import (
    ConfigurationError,
    Conflict,
    ServerNotFound,
    ToolChangeNotFound,
    ToolDefinitionChanged,
    ToolNotFound,
    ToolWithheld,
)
from orchestrator.mcp.connection import ServerConnection
from orchestrator.mcp.pinning import ToolApprovals, WithheldTool
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
        if entry is None:
            change = self._withheld.get(name)
            if change is not None:
                raise ToolWithheld(change.server_id, change.tool)
            raise ToolNotFound(name)
        connection, tool = entry
        if self._observer is None:
            result = await connection.call_tool(
                tool, arguments, user_id=user_id, on_progress=on_progress, requests=requests
            )
        else:
            with self._observer.tool_call(connection.id, tool, arguments) as observed:
                result = await connection.call_tool(
                    tool, arguments, user_id=user_id, on_progress=on_progress, requests=requests
                )
                observed.finished(is_error=bool(result.is_error))
        output = render_result(result, max_chars=self._max_chars)
        if output.hidden_characters_removed:
            logger.warning(
                "MCP server %s: removed %d invisible characters from a result of tool %s",
                connection.id,
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
        connection.stop()
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

    def resources(self) -> list[ResourceSpec]:
        """Every healthy server's resources, and its resource templates."""
        listed: list[ResourceSpec] = []
        for connection in self._connections.values():
            catalog = connection.catalog
            listed.extend(catalog.resources)
            listed.extend(catalog.resource_templates)
        return listed

    def prompts(self) -> list[PromptSpec]:
        return [prompt for connection in self._connections.values() for prompt in connection.catalog.prompts]

    def resource_updates(self, server_id: str) -> Mapping[str, datetime]:
        """Raises: ServerNotFound."""
        return self._connection(server_id).resource_updates

    async def read_resource(self, server_id: str, uri: str) -> ReadResourceResult:
        """Raises: ServerNotFound, ServerUnavailable, ServerRequestFailed."""
        return await self._connection(server_id).read_resource(uri)

    async def get_prompt(self, server_id: str, name: str, arguments: Mapping[str, str]) -> GetPromptResult:
        """Raises: ServerNotFound, ServerUnavailable, ServerRequestFailed."""
        return await self._connection(server_id).get_prompt(name, arguments)

    async def subscribe_resource(self, server_id: str, uri: str) -> None:
        """Raises: ServerNotFound, ServerUnavailable, ServerRequestFailed."""
        await self._connection(server_id).subscribe_resource(uri)

    # --- internals --------------------------------------------------------------------------------------------------

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
        self._task_group.start_soon(connection.run, name=f"mcp-server-{config.id}")
        return connection

    def _stop_all(self) -> None:
        for connection in self._connections.values():
            connection.stop()

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
        for connection in self._connections.values():
            healthy = connection.status == "healthy"
            # A down server's tools stay routable so a call reports ServerUnavailable, not an unknown tool.
            for spec in connection.known_tools:
                if spec.name in index or spec.name in withheld:
                    logger.error("tool name %s is exposed twice; keeping the first", spec.name)
                    continue
                change = self._approvals.review(spec) if self._approvals is not None else None
                if change is not None:
                    withheld[spec.name] = change
                    continue
                index[spec.name] = (connection, spec.tool)
                offered = self._clean(spec)
                cleaned[spec.name] = (spec, offered)
                if healthy:
                    listing.append(offered)
        self._tool_index = index
        self._tool_list = listing
        self._withheld = withheld
        self._cleaned_specs = cleaned
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:  # boundary: a faulty observer must not break the registry
                logger.exception("the MCP registry's on_change callback failed")
