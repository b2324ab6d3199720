"""One MCP server's connection: connect, list its tools, follow changes, reconnect, and run tool calls.

A single supervisor coroutine (:meth:`ServerConnection.run`) owns the SDK client: it opens and closes it in the
same task, as anyio requires. Tool calls come from other tasks and only borrow the live client.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

import anyio
import httpx2
from anyio.abc import TaskStatus
from mcp.client import Client
from mcp.client.client import ConnectMode
from mcp.client.session import IncomingMessage, MessageHandlerFnT
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CONNECTION_CLOSED,
    INVALID_REQUEST,
    CallToolResult,
    Implementation,
    RequestParamsMeta,
    Tool,
    ToolListChangedNotification,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from orchestrator.errors import ServerUnavailable, ToolCallFailed, ToolTimeout
from orchestrator.mcp.backoff import Backoff
from orchestrator.mcp.failures import EXPECTED_FAILURES, describe_failure, is_expected_failure
from orchestrator.mcp.naming import expose_name
from orchestrator.mcp.redaction import config_secrets, public_url
from orchestrator.mcp.stderr import StderrTail, capture_stderr
from orchestrator.mcp.transport import OnEnd, open_transport
from orchestrator.mcp.types import USER_META_KEY, ProgressCallback, ServerConfig, ServerInfo, ServerStatus, ToolSpec

logger = logging.getLogger(__name__)

_LIST_PAGE_LIMIT: Final = 100
"""Pages of ``tools/list`` we follow; a server whose cursor never ends cannot keep us listing."""

_CONNECTION_LOST: Final = MCPError(code=CONNECTION_CLOSED, message="Connection closed")


def _client_info() -> Implementation:
    try:
        our_version = version("mcp-assistant")
    except PackageNotFoundError:
        our_version = "0"
    return Implementation(name="mcp-assistant", version=our_version)


@dataclass(eq=False)
class _Live:
    """One connection attempt: its client once connected, and why it ended."""

    client: Client | None = None
    healthy_since: float | None = None
    lost: anyio.Event = field(default_factory=anyio.Event)
    reason: BaseException | None = None
    relist_wanted: anyio.Event = field(default_factory=anyio.Event)

    def lose(self, reason: BaseException) -> None:
        if self.reason is None:
            self.reason = reason
        self.lost.set()


class ServerConnection:
    """Keeps one MCP server connected and exposes its tools.

    Args:
        config: the server.
        backoff_initial: first delay, in seconds, before reconnecting after a failure.
        backoff_max: largest delay between reconnection attempts; a connection that stayed healthy this long
            starts again from ``backoff_initial`` when it fails.
        on_change: called (synchronously) whenever the status, the error or the tools change.
        protocol_mode: the SDK's ``mode``: ``"auto"`` speaks the newest protocol a server offers, ``"legacy"``
            forces the ``initialize`` handshake.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        on_change: Callable[[], None] | None = None,
        protocol_mode: ConnectMode = "auto",
    ) -> None:
        self.config = config
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._stable_after = backoff_max
        self._on_change = on_change
        self._mode = protocol_mode
        self._status: ServerStatus = "connecting" if config.enabled else "stopped"
        self._last_error: str | None = None
        self._connected_at: datetime | None = None
        self._tools: tuple[ToolSpec, ...] = ()
        self._live: _Live | None = None
        self._scope: anyio.CancelScope | None = None
        self._stop_requested = False
        self._settled = anyio.Event()
        self._stopped = anyio.Event()

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def status(self) -> ServerStatus:
        return self._status

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def connected_at(self) -> datetime | None:
        return self._connected_at

    @property
    def tools(self) -> tuple[ToolSpec, ...]:
        """The server's tools while it is healthy, else none."""
        return self._tools if self._status == "healthy" else ()

    @property
    def known_tools(self) -> tuple[ToolSpec, ...]:
        """The tools of the last successful listing, kept while the server is down so calls can say why they fail."""
        return self._tools

    @property
    def settled(self) -> bool:
        """Whether the first connection attempt has finished, successfully or not."""
        return self._settled.is_set()

    def info(self) -> ServerInfo:
        return ServerInfo(
            id=self.id,
            transport=self.config.transport,
            source=self.config.source,
            status=self._status,
            tool_count=len(self.tools),
            last_error=self._last_error,
            connected_at=self._connected_at,
            url=public_url(self.config.url) if self.config.url is not None else None,
        )

    async def wait_settled(self) -> None:
        await self._settled.wait()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def stop(self) -> None:
        """Ask :meth:`run` to close the connection and return; see :meth:`wait_stopped`."""
        self._stop_requested = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        """Keep the server connected until :meth:`stop` is called or the caller is cancelled.

        Failures are recorded in ``last_error`` and retried with backoff; they never propagate.
        """
        try:
            if not self.config.enabled or self._stop_requested:
                return
            with anyio.CancelScope() as self._scope:
                while True:
                    healthy_for = await self._attempt()
                    if healthy_for >= self._stable_after:
                        self._backoff.reset()
                    await anyio.sleep(self._backoff.next_delay())
        finally:
            self._live = None
            self._connected_at = None
            self._set_status("stopped")
            self._settled.set()
            self._stopped.set()

    async def call_tool(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        user_id: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> CallToolResult:
        """Run ``tool`` on the server and return its raw MCP result.

        Args:
            tool: the server's own name for the tool.
            arguments: the tool's arguments.
            user_id: sent in the request's ``_meta`` under ``USER_META_KEY`` when the server's config says
                ``send_user_id``; other servers never see it.
            on_progress: receives the server's progress notifications for this call.

        Raises:
            ServerUnavailable: the server is not healthy right now.
            ToolTimeout: no answer within the server's ``tool_timeout_seconds``; the request was cancelled on the
                server.
            ToolCallFailed: the connection failed during the call, or the server answered with a protocol error.
        """
        live = self._live
        client = live.client if live is not None else None
        if live is None or client is None or self._status != "healthy":
            raise ServerUnavailable(self.id, self._last_error or f"the server is {self._status}")
        seconds = self.config.tool_timeout_seconds
        meta: RequestParamsMeta | None = None
        if user_id is not None and self.config.send_user_id:
            meta = {}
            meta[USER_META_KEY] = user_id
        progress = _forward_progress(on_progress) if on_progress is not None else None
        # Leaving this scope cancels the SDK's wait, which sends the server notifications/cancelled.
        with anyio.move_on_after(seconds):
            try:
                return await client.call_tool(tool, dict(arguments), progress_callback=progress, meta=meta)
            except MCPError as exc:
                if not _means_connection_lost(exc):
                    raise ToolCallFailed(self.id, tool, describe_failure(exc, self.config)) from exc
                self._lose(live, exc)
                # The transport may know better than "closed" why the connection ended (a message too large).
                cause = describe_failure(live.reason or exc, self.config)
                reason = f"the connection to the server was lost during the call: {cause}"
                raise ToolCallFailed(self.id, tool, reason) from exc
            except (OSError, httpx2.HTTPError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                self._lose(live, exc)
                raise ToolCallFailed(self.id, tool, describe_failure(exc, self.config)) from exc
            except ValidationError as exc:
                raise ToolCallFailed(self.id, tool, "the server's answer is not valid MCP") from exc
            except RuntimeError as exc:
                # The SDK raises RuntimeError for a result that breaks the tool's output schema, and for a client
                # that closed between our health check and the call.
                raise ToolCallFailed(self.id, tool, describe_failure(exc, self.config)) from exc
        raise ToolTimeout(self.id, tool, seconds)

    # --- the supervisor ---------------------------------------------------------------------------------------------

    async def _attempt(self) -> float:
        """Connect once and serve until the connection ends; returns how long it was healthy, in seconds."""
        self._set_status("connecting")
        live = self._live = _Live()
        tail: StderrTail | None = None
        try:
            async with AsyncExitStack() as stack:
                if self.config.transport == "stdio":
                    tail = await stack.enter_async_context(capture_stderr(self.id, config_secrets(self.config)))
                await self._connect_and_serve(live, tail)
        except Exception as exc:  # supervisor boundary: whatever one server does must not reach the others
            live.lose(exc)
        # The stderr capture has closed by now, so the tail holds the server's last words.
        was_healthy = live.healthy_since is not None
        self._record_failure(live.reason or _CONNECTION_LOST, tail, was_healthy=was_healthy)
        return 0.0 if live.healthy_since is None else anyio.current_time() - live.healthy_since

    async def _connect_and_serve(self, live: _Live, tail: StderrTail | None) -> None:
        """Returns when the connection is lost; the reason is in ``live``."""
        timeout = self.config.connect_timeout_seconds
        # One scope spans the client's whole life: a scope around the connect step alone would close before the
        # task groups the client opens inside it, which anyio forbids. Its deadline is lifted once connected.
        with anyio.CancelScope(deadline=anyio.current_time() + timeout) as connect_scope:
            transport = open_transport(self.config, errlog=tail.errlog if tail else None, on_end=self._on_end(live))
            client = Client(
                transport,
                mode=self._mode,
                message_handler=self._message_handler(live),
                client_info=_client_info(),
                cache=None,  # we keep the tool list ourselves and refresh it on change
            )
            async with client, anyio.create_task_group() as tg:
                if _announces_changes_by_subscription(client):
                    # Subscribe before listing, or a change between the two would go unnoticed.
                    await tg.start(self._listen_for_changes, client, live)
                await self._refresh_tools(client)
                connect_scope.deadline = math.inf
                live.healthy_since = anyio.current_time()
                live.client = client
                self._mark_healthy()
                tg.start_soon(self._relist_on_change, client, live)
                try:
                    await live.lost.wait()
                finally:
                    live.client = None
                tg.cancel_scope.cancel()
        if connect_scope.cancelled_caught:
            raise TimeoutError(f"did not connect within {timeout:g}s")

    async def _relist_on_change(self, client: Client, live: _Live) -> None:
        while True:
            await live.relist_wanted.wait()
            live.relist_wanted = anyio.Event()
            try:
                await self._refresh_tools(client)
            except EXPECTED_FAILURES as exc:
                self._lose(live, exc)
                return
            self._notify()

    async def _listen_for_changes(
        self, client: Client, live: _Live, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep a ``subscriptions/listen`` stream open: 2026-07-28 servers send list changes only to one.

        Reports started once the server acknowledged the subscription, or gave up on it.
        """
        acknowledged = False
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + self.config.connect_timeout_seconds) as ack_scope:
                async with client.listen(tools_list_changed=True) as subscription:
                    ack_scope.deadline = math.inf
                    acknowledged = True
                    task_status.started()
                    async for _event in subscription:
                        live.relist_wanted.set()
            if ack_scope.cancelled_caught:
                logger.warning("MCP server %s did not acknowledge the tool change subscription", self.id)
                return
            # The server ended the stream on purpose (it is going away): reconnect and list again.
            self._lose(live, SubscriptionLost("the server ended the change subscription"))
        except (ListenNotSupportedError, MCPError) as exc:
            if isinstance(exc, MCPError) and _means_connection_lost(exc):
                self._lose(live, exc)
            else:
                logger.info("MCP server %s: no tool change subscription (%s)", self.id, exc)
        except SubscriptionLost as exc:
            self._lose(live, exc)
        finally:
            if not acknowledged:
                task_status.started()

    async def _refresh_tools(self, client: Client) -> None:
        with anyio.fail_after(self.config.connect_timeout_seconds):
            listed: list[Tool] = []
            cursor: str | None = None
            for _ in range(_LIST_PAGE_LIMIT):
                page = await client.list_tools(cursor=cursor)
                listed.extend(page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
            else:
                logger.warning("MCP server %s: stopped listing tools after %d pages", self.id, _LIST_PAGE_LIMIT)
        specs: dict[str, ToolSpec] = {}
        for tool in listed:
            spec = _tool_spec(self.id, tool)
            specs.setdefault(spec.name, spec)
        self._tools = tuple(specs.values())

    def _message_handler(self, live: _Live) -> MessageHandlerFnT:
        async def handle(message: IncomingMessage) -> None:
            # Runs on the SDK's receive path: note what happened, do no I/O here.
            if isinstance(message, ToolListChangedNotification):
                live.relist_wanted.set()
            elif isinstance(message, Exception):
                logger.warning("MCP server %s: transport error: %s", self.id, describe_failure(message, self.config))

        return handle

    def _on_end(self, live: _Live) -> OnEnd:
        return lambda reason: self._lose(live, reason or _CONNECTION_LOST)

    def _lose(self, live: _Live, reason: BaseException) -> None:
        """Note that ``live`` is gone; callers see the server unavailable at once, before the supervisor reacts."""
        first = live.reason is None
        live.lose(reason)
        if first and live is self._live and self._status == "healthy":
            self._last_error = describe_failure(reason, self.config)
            self._connected_at = None
            self._set_status("unhealthy")

    def _mark_healthy(self) -> None:
        self._connected_at = datetime.now(UTC)
        self._last_error = None
        self._settled.set()
        logger.info("MCP server %s connected with %d tools", self.id, len(self._tools))
        self._set_status("healthy", force_notify=True)

    def _record_failure(self, reason: BaseException, tail: StderrTail | None, *, was_healthy: bool) -> None:
        previous = self._last_error
        # A server that fails to start usually says why on stderr; later its stderr is logs, maybe with user data.
        stderr_line = tail.last_line if tail is not None and not was_healthy else None
        self._last_error = describe_failure(reason, self.config, stderr_line=stderr_line)
        self._connected_at = None
        self._live = None
        if not is_expected_failure(reason):
            logger.error("MCP server %s failed unexpectedly: %s", self.id, self._last_error, exc_info=reason)
        elif was_healthy or self._last_error != previous:
            logger.warning("MCP server %s is unavailable: %s", self.id, self._last_error)
        else:  # the same failure again: one warning is enough
            logger.debug("MCP server %s is still unavailable: %s", self.id, self._last_error)
        self._settled.set()
        self._set_status("unhealthy", force_notify=True)

    def _set_status(self, status: ServerStatus, *, force_notify: bool = False) -> None:
        changed = status != self._status
        self._status = status
        if changed or force_notify:
            self._notify()

    def _notify(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change()
        except Exception:  # boundary: a faulty observer must not take the connection down
            logger.exception("on_change callback failed for MCP server %s", self.id)


def _announces_changes_by_subscription(client: Client) -> bool:
    capabilities = client.server_capabilities.tools
    modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
    return modern and capabilities is not None and bool(capabilities.list_changed)


def _means_connection_lost(exc: MCPError) -> bool:
    # A stateful streamable-HTTP server that restarted answers 404, which the SDK reports as "Session terminated";
    # only a new connection (a new session) helps.
    return exc.code == CONNECTION_CLOSED or (exc.code == INVALID_REQUEST and exc.error.message == "Session terminated")


def _tool_spec(server_id: str, tool: Tool) -> ToolSpec:
    annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
    return ToolSpec(
        name=expose_name(server_id, tool.name),
        server_id=server_id,
        tool=tool.name,
        description=tool.description or tool.title or "",
        input_schema=tool.input_schema,
        annotations=annotations,
    )


def _forward_progress(callback: ProgressCallback) -> ProgressFnT:
    async def forward(progress: float, total: float | None, message: str | None) -> None:
        await callback(progress, total, message)

    return forward
