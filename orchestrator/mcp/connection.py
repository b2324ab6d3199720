"""One MCP server's connection: connect, list its tools, follow changes, reconnect, and run tool calls.

A single supervisor coroutine (:meth:`ServerConnection.run`) owns the SDK client: it opens and closes it in the
same task, as anyio requires. Tool calls come from other tasks and only borrow the live client.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final, TypeVar

import anyio
import httpx2
from anyio.abc import TaskStatus
from mcp.client import Client
from mcp.client.client import ConnectMode
from mcp.client.session import ClientRequestContext, IncomingMessage, MessageHandlerFnT
from mcp.client.subscriptions import ListenNotSupportedError, ResourceUpdated, Subscription, SubscriptionLost
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import (
    CONNECTION_CLOSED,
    INVALID_REQUEST,
    URL_ELICITATION_REQUIRED,
    CallToolResult,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitationRequiredErrorData,
    ElicitRequestFormParams,
    ElicitRequestParams,
    ElicitRequestURLParams,
    ElicitResult,
    EmptyResult,
    ErrorData,
    GetPromptResult,
    Implementation,
    ListRootsResult,
    LoggingMessageNotificationParams,
    PromptListChangedNotification,
    ReadResourceResult,
    RequestParamsMeta,
    ResourceListChangedNotification,
    ResourceUpdatedNotification,
    Root,
    Tool,
    ToolListChangedNotification,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from orchestrator.errors import (
    ServerAuthorizationRequired,
    ServerRequestFailed,
    ServerUnavailable,
    ToolCallFailed,
    ToolTimeout,
)
from orchestrator.mcp.backoff import Backoff
from orchestrator.mcp.catalog import list_catalog
from orchestrator.mcp.failures import EXPECTED_FAILURES, describe_failure, is_expected_failure
from orchestrator.mcp.naming import expose_name
from orchestrator.mcp.oauth.tokens import Challenge, ChallengeAware, ChallengeDetector
from orchestrator.mcp.redaction import config_secrets, public_url
from orchestrator.mcp.stderr import StderrTail, capture_stderr
from orchestrator.mcp.transport import OnEnd, open_transport
from orchestrator.mcp.types import (
    USER_META_KEY,
    Catalog,
    ProgressCallback,
    ServerConfig,
    ServerInfo,
    ServerRequests,
    ServerStatus,
    ToolSpec,
)

logger = logging.getLogger(__name__)
_Result = TypeVar("_Result")
_Answer = TypeVar("_Answer", ElicitResult, CreateMessageResult | ErrorData)

warnings.filterwarnings(
    "ignore", message="resources/subscribe is removed as of 2026-07-28", category=MCPDeprecationWarning
)

_LIST_PAGE_LIMIT: Final = 100
"""Pages of ``tools/list`` we follow; a server whose cursor never ends cannot keep us listing."""

_CONNECTION_LOST: Final = MCPError(code=CONNECTION_CLOSED, message="Connection closed")

_UNATTRIBUTED: Final = "this client cannot tell which user's tool call the request belongs to"

_PROGRESS_EXTENSION_LIMIT: Final = 10
"""Progress notifications restart a call's timeout, up to this many times the timeout in all: a server that reports
progress forever still cannot hold a turn forever."""

_SERVER_LOG_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}
server_logger = logging.getLogger("orchestrator.mcp.server_log")


def _client_info() -> Implementation:
    try:
        our_version = version("mcp-assistant")
    except PackageNotFoundError:
        our_version = "0"
    return Implementation(name="mcp-assistant", version=our_version)


@dataclass(eq=False)
class _InFlight:
    """A running tool call: who asked for it, and how to answer what its server asks meanwhile."""

    user_id: str | None
    requests: ServerRequests | None
    scope: anyio.CancelScope
    timeout: float


@dataclass(eq=False)
class _Live:
    """One connection attempt: its client once connected, and why it ended."""

    client: Client | None = None
    healthy_since: float | None = None
    lost: anyio.Event = field(default_factory=anyio.Event)
    reason: BaseException | None = None
    relist_wanted: anyio.Event = field(default_factory=anyio.Event)
    relisten_wanted: anyio.Event = field(default_factory=anyio.Event)

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
        auth: authenticates the HTTP requests to the server (an OAuth 2.1 client such as the SDK's
            ``OAuthClientProvider``, for a protected server).
        on_tools_changed: called with the server id when listing again (on the server's notice, or on
            :meth:`request_refresh`) found different tools.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        on_change: Callable[[], None] | None = None,
        protocol_mode: ConnectMode = "auto",
        auth: httpx2.Auth | None = None,
        on_tools_changed: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._on_tools_changed = on_tools_changed
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._stable_after = backoff_max
        self._on_change = on_change
        self._mode = protocol_mode
        self._auth = auth if auth is not None else _detector_for(config)
        self._status: ServerStatus = "connecting" if config.enabled else "stopped"
        self._last_error: str | None = None
        self._failed_attempts = 0
        self._connected_at: datetime | None = None
        self._tools: tuple[ToolSpec, ...] = ()
        self._catalog = Catalog()
        self._resource_updates: dict[str, datetime] = {}
        self._subscribed: set[str] = set()
        self._in_flight: set[_InFlight] = set()
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
    def challenge(self) -> Challenge | None:
        """How the server last refused our credentials, when it did (it wants each user to sign in)."""
        return self._auth.challenge if isinstance(self._auth, ChallengeAware) else None

    @property
    def busy(self) -> bool:
        """Whether a tool call is running on the connection."""
        return bool(self._in_flight)

    @property
    def catalog(self) -> Catalog:
        """The server's resources, resource templates and prompts while it is healthy, else none."""
        return self._catalog if self._status == "healthy" else Catalog()

    @property
    def resource_updates(self) -> Mapping[str, datetime]:
        """When each resource the server announced as updated (``notifications/resources/updated``) last changed."""
        return dict(self._resource_updates)

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
            failed_attempts=self._failed_attempts,
            url=public_url(self.config.url) if self.config.url is not None else None,
        )

    async def wait_settled(self) -> None:
        await self._settled.wait()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def require_sign_in(self) -> None:
        """Mark the server as one each user signs in to: this connection (without anyone's sign-in) never runs."""
        self._status = "auth_required"
        self._last_error = None
        self._settled.set()
        self._stopped.set()
        self._notify()

    def request_refresh(self) -> None:
        """List the server's tools, resources and prompts again (another replica saw them change)."""
        live = self._live
        if live is not None and live.client is not None:
            live.relist_wanted.set()

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
                    if self._status == "auth_required":
                        # Retrying without a new sign-in would only be refused again; a sign-in makes a new
                        # connection, so this one waits to be stopped.
                        await anyio.sleep_forever()
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
        requests: ServerRequests | None = None,
    ) -> CallToolResult:
        """Run ``tool`` on the server and return its raw MCP result.

        Args:
            tool: the server's own name for the tool.
            arguments: the tool's arguments.
            user_id: sent in the request's ``_meta`` under ``USER_META_KEY`` when the server's config says
                ``send_user_id``; other servers never see it.
            on_progress: receives the server's progress notifications for this call.
            requests: answers the server's sampling and elicitation requests made while this call runs.

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
        started = anyio.current_time()
        latest_deadline = started + seconds * _PROGRESS_EXTENSION_LIMIT
        # Leaving this scope cancels the SDK's wait, which sends the server notifications/cancelled.
        with anyio.CancelScope(deadline=started + seconds) as scope:

            async def on_server_progress(progress: float, total: float | None, message: str | None) -> None:
                # A server that keeps reporting progress is working, not stuck: give it the timeout again.
                scope.deadline = min(anyio.current_time() + seconds, latest_deadline)
                if on_progress is not None:
                    await on_progress(progress, total, message)

            in_flight = _InFlight(user_id, requests, scope, seconds)
            self._in_flight.add(in_flight)
            try:
                try:
                    return await client.call_tool(
                        tool, dict(arguments), progress_callback=on_server_progress, meta=meta
                    )
                except MCPError as exc:
                    links = _required_links(exc)
                    if not links or requests is None:
                        raise
                    await self._have_links_opened(tool, links, in_flight, requests)
                    # The user went through the server's pages: the call may work now (asked once more only).
                    return await client.call_tool(
                        tool, dict(arguments), progress_callback=on_server_progress, meta=meta
                    )
            except MCPError as exc:
                challenge = self.challenge
                if challenge is not None:
                    # The server refused our credentials (or wants more scope): this connection is done for.
                    self._lose(live, _Refused(challenge.reason))
                    raise ServerAuthorizationRequired(self.id, challenge.reason, scope=challenge.scope) from exc
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
            finally:
                self._in_flight.discard(in_flight)
        raise ToolTimeout(self.id, tool, seconds)

    async def read_resource(self, uri: str) -> ReadResourceResult:
        """Read one of the server's resources (or a resource link a tool returned).

        Raises:
            ServerUnavailable: the server is not healthy right now.
            ServerRequestFailed: the server refused, or did not answer within the tool timeout.
        """
        client = self._client_now()
        return await self._request(f"reading {uri!r}", lambda: client.read_resource(uri))

    async def get_prompt(self, name: str, arguments: Mapping[str, str]) -> GetPromptResult:
        """Render one of the server's prompts with ``arguments``.

        Raises:
            ServerUnavailable: the server is not healthy right now.
            ServerRequestFailed: the server refused, or did not answer within the tool timeout.
        """
        client = self._client_now()
        return await self._request(f"prompt {name!r}", lambda: client.get_prompt(name, dict(arguments)))

    async def subscribe_resource(self, uri: str) -> None:
        """Ask the server to announce changes of ``uri``; they show in :attr:`resource_updates`.

        Raises:
            ServerUnavailable: the server is not healthy right now.
            ServerRequestFailed: the server does not support subscriptions or refused this one.
        """
        client = self._client_now()
        resources = client.server_capabilities.resources
        if resources is None or not resources.subscribe:
            raise ServerRequestFailed(self.id, f"subscribing to {uri!r}", "the server does not offer subscriptions")
        if uri in self._subscribed:
            return
        if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
            # 2026-07-28 carries subscriptions on the listen stream: reopen it with this resource added.
            self._subscribed.add(uri)
            live = self._live
            if live is not None:
                live.relisten_wanted.set()
            return
        await self._request(f"subscribing to {uri!r}", lambda: _subscribe_before_2026(client, uri))
        self._subscribed.add(uri)

    def _client_now(self) -> Client:
        live = self._live
        client = live.client if live is not None else None
        if client is None or self._status != "healthy":
            raise ServerUnavailable(self.id, self._last_error or f"the server is {self._status}")
        return client

    async def _request(self, what: str, send: Callable[[], Awaitable[_Result]]) -> _Result:
        seconds = self.config.tool_timeout_seconds
        with anyio.move_on_after(seconds):
            try:
                return await send()
            except MCPError as exc:
                raise ServerRequestFailed(self.id, what, describe_failure(exc, self.config)) from exc
            except (OSError, httpx2.HTTPError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                raise ServerRequestFailed(self.id, what, describe_failure(exc, self.config)) from exc
            except ValidationError as exc:
                raise ServerRequestFailed(self.id, what, "the server's answer is not valid MCP") from exc
        raise ServerRequestFailed(self.id, what, f"no answer within {seconds:g}s")

    # --- the supervisor ---------------------------------------------------------------------------------------------

    async def _attempt(self) -> float:
        """Connect once and serve until the connection ends; returns how long it was healthy, in seconds."""
        if self._status != "unhealthy":  # a server that failed stays unhealthy while it is retried, until it connects
            self._set_status("connecting")
        if isinstance(self._auth, ChallengeAware):
            self._auth.challenge = None
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
            transport = open_transport(
                self.config, errlog=tail.errlog if tail else None, on_end=self._on_end(live), auth=self._auth
            )
            client = Client(
                transport,
                mode=self._mode,
                message_handler=self._message_handler(live),
                logging_callback=self._log_from_server,
                sampling_callback=self._on_sampling,
                elicitation_callback=self._on_elicitation,
                list_roots_callback=self._on_list_roots if self.config.roots else None,
                # 2026-07-28 servers log only to requests that opt in; earlier ones are asked with logging/setLevel.
                log_level="info",
                client_info=_client_info(),
                cache=None,  # we keep the tool list ourselves and refresh it on change
            )
            async with client, anyio.create_task_group() as tg:
                if _announces_changes_by_subscription(client):
                    # Subscribe before listing, or a change between the two would go unnoticed.
                    await tg.start(self._listen_for_changes, client, live)
                await self._refresh_tools(client)
                await self._refresh_catalog(client)
                await self._resubscribe(client)
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
            before = self._tools
            try:
                await self._refresh_tools(client)
                await self._refresh_catalog(client)
            except EXPECTED_FAILURES as exc:
                self._lose(live, exc)
                return
            self._notify()
            if self._tools != before and self._on_tools_changed is not None:
                try:
                    self._on_tools_changed(self.id)
                except Exception:  # boundary: a faulty observer must not take the connection down
                    logger.exception("on_tools_changed callback failed for MCP server %s", self.id)

    async def _listen_for_changes(
        self, client: Client, live: _Live, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep a ``subscriptions/listen`` stream open: 2026-07-28 servers send list changes only to one.

        The stream also carries the resource subscriptions; subscribing to another resource reopens it with the new
        set. Reports started once the server acknowledged the first stream, or gave up on it.
        """
        acknowledged = False
        try:
            while True:
                live.relisten_wanted = anyio.Event()
                timeout = self.config.connect_timeout_seconds
                reopened = False
                with anyio.CancelScope(deadline=anyio.current_time() + timeout) as ack_scope:
                    subscription_set = tuple(sorted(self._subscribed))
                    async with client.listen(
                        **_change_kinds(client), resource_subscriptions=subscription_set
                    ) as stream:
                        ack_scope.deadline = math.inf
                        if not acknowledged:
                            acknowledged = True
                            task_status.started()
                        reopened = await self._follow(stream, live)
                if ack_scope.cancelled_caught:
                    logger.warning("MCP server %s did not acknowledge the change subscription", self.id)
                    return
                if not reopened:
                    # The server ended the stream on purpose (it is going away): reconnect and list again.
                    self._lose(live, SubscriptionLost("the server ended the change subscription"))
                    return
        except (ListenNotSupportedError, MCPError) as exc:
            if isinstance(exc, MCPError) and _means_connection_lost(exc):
                self._lose(live, exc)
            else:
                logger.info("MCP server %s: no change subscription (%s)", self.id, exc)
        except SubscriptionLost as exc:
            self._lose(live, exc)
        finally:
            if not acknowledged:
                task_status.started()

    async def _follow(self, stream: Subscription, live: _Live) -> bool:
        """Act on the stream's events until it ends (``False``) or must be reopened with new subscriptions."""
        relisten = live.relisten_wanted
        async with anyio.create_task_group() as tg:

            async def stop_when_resubscribing() -> None:
                await relisten.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(stop_when_resubscribing)
            async for event in stream:
                if isinstance(event, ResourceUpdated):
                    self._resource_updates[event.uri] = datetime.now(UTC)
                    self._notify()
                else:
                    live.relist_wanted.set()
            tg.cancel_scope.cancel()
        return relisten.is_set()

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
            if tool.execution is not None and tool.execution.task_support == "required":
                # Such a tool may only run as a task, which this client does not offer: never show it to the model.
                logger.info("MCP server %s: tool %s needs task support; not offered", self.id, tool.name)
                continue
            spec = _tool_spec(self.id, tool)
            specs.setdefault(spec.name, spec)
        self._tools = tuple(specs.values())

    async def _refresh_catalog(self, client: Client) -> None:
        self._catalog = await list_catalog(client, self.id, self.config.connect_timeout_seconds)

    async def _resubscribe(self, client: Client) -> None:
        """Subscriptions end with a connection; renew them on a new one (2026-07-28 renews them on its stream)."""
        if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return
        for uri in sorted(self._subscribed):
            try:
                await _subscribe_before_2026(client, uri)
            except MCPError as exc:
                logger.warning("MCP server %s refused the renewed subscription to %s: %s", self.id, uri, exc)

    async def _on_elicitation(
        self, context: ClientRequestContext, params: ElicitRequestParams
    ) -> ElicitResult | ErrorData:
        del context  # requests do not say which call they belong to; see _asking_call
        result = await self._ask_for_the_call(lambda requests: requests.elicit(self.id, params))
        if (
            isinstance(result, ElicitResult)
            and result.action == "accept"
            and isinstance(params, ElicitRequestFormParams)
        ):
            return ElicitResult(action="accept", content=with_schema_defaults(params, result.content))
        return result

    async def _on_sampling(
        self, context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult | ErrorData:
        del context  # requests do not say which call they belong to; see _asking_call
        return await self._ask_for_the_call(lambda requests: requests.sample(self.id, params))

    async def _ask_for_the_call(self, ask: Callable[[ServerRequests], Awaitable[_Answer]]) -> _Answer | ErrorData:
        """Hand a server's request to the tool call it belongs to, or refuse it when that cannot be told."""
        call = self._asking_call()
        if call is None or call.requests is None:
            return ErrorData(code=INVALID_REQUEST, message=_UNATTRIBUTED)
        requests = call.requests
        return await self._while_waiting_for_the_user(call, lambda: ask(requests))

    async def _on_list_roots(self, context: ClientRequestContext) -> ListRootsResult | ErrorData:
        del context  # the same roots for every request
        roots = [
            Root.model_validate({"uri": uri, "name": uri.rstrip("/").rsplit("/", 1)[-1]}) for uri in self.config.roots
        ]
        return ListRootsResult(roots=roots)

    async def _have_links_opened(
        self, tool: str, links: list[ElicitRequestURLParams], call: _InFlight, requests: ServerRequests
    ) -> None:
        """Show the links a server says must be opened before the call can work (error -32042, before 2026).

        Raises:
            ToolCallFailed: the user did not go through one of them.
        """
        for link in links:
            answer = await self._while_waiting_for_the_user(call, lambda link=link: requests.elicit(self.id, link))
            if answer.action != "accept":
                raise ToolCallFailed(self.id, tool, f"the server needs {link.url} opened first, and the user did not")

    def _asking_call(self) -> _InFlight | None:
        """The tool call a server request belongs to.

        Requests do not say which of the connection's calls they belong to, so they are answered only when every
        running call belongs to the same user: one user's question is never shown to another user.
        """
        users = {call.user_id for call in self._in_flight}
        if len(users) != 1:
            return None
        return next(iter(self._in_flight))

    async def _while_waiting_for_the_user(self, call: _InFlight, ask: Callable[[], Awaitable[_Result]]) -> _Result:
        """The call's timeout stops while the user answers, and starts again afterwards."""
        call.scope.deadline = math.inf
        try:
            return await ask()
        finally:
            call.scope.deadline = anyio.current_time() + call.timeout

    async def _log_from_server(self, params: LoggingMessageNotificationParams) -> None:
        level = _SERVER_LOG_LEVELS.get(params.level, logging.INFO)
        data = params.data if isinstance(params.data, str) else repr(params.data)
        server_logger.log(
            level,
            "MCP server %s says: %s",
            self.id,
            data[:2_000],
            extra={"mcp_server": self.id, "mcp_logger": params.logger},
        )

    def _message_handler(self, live: _Live) -> MessageHandlerFnT:
        async def handle(message: IncomingMessage) -> None:
            # Runs on the SDK's receive path: note what happened, do no I/O here.
            if isinstance(
                message, ToolListChangedNotification | PromptListChangedNotification | ResourceListChangedNotification
            ):
                live.relist_wanted.set()
            elif isinstance(message, ResourceUpdatedNotification):
                self._resource_updates[str(message.params.uri)] = datetime.now(UTC)
                self._notify()
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
        self._failed_attempts = 0
        self._settled.set()
        logger.info("MCP server %s connected with %d tools", self.id, len(self._tools))
        self._set_status("healthy", force_notify=True)

    def _record_failure(self, reason: BaseException, tail: StderrTail | None, *, was_healthy: bool) -> None:
        challenge = self.challenge
        if challenge is not None:
            self._last_error = challenge.reason
            self._connected_at = None
            self._live = None
            logger.info("MCP server %s: %s", self.id, challenge.reason)
            self._settled.set()
            self._set_status("auth_required", force_notify=True)
            return
        previous = self._last_error
        # A server that fails to start usually says why on stderr; later its stderr is logs, maybe with user data.
        stderr_line = tail.last_line if tail is not None and not was_healthy else None
        self._last_error = describe_failure(reason, self.config, stderr_line=stderr_line)
        self._connected_at = None
        self._live = None
        self._failed_attempts += 1
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


class _Refused(Exception):
    """The server refused the connection's credentials during a call."""


def _detector_for(config: ServerConfig) -> httpx2.Auth | None:
    """Notice a 401 from an HTTP server given no credentials of ours: it wants each user to sign in."""
    if config.transport == "stdio" or any(name.lower() == "authorization" for name in config.headers):
        return None
    return ChallengeDetector()


def _required_links(error: MCPError) -> list[ElicitRequestURLParams]:
    if error.code != URL_ELICITATION_REQUIRED:
        return []
    try:
        return ElicitationRequiredErrorData.model_validate(error.error.data).elicitations
    except ValidationError:
        return []


def with_schema_defaults(params: ElicitRequestFormParams, content: Mapping[str, Any] | None) -> dict[str, Any]:
    """An accepted form answer with the schema's defaults for the fields it leaves out (SEP-1034)."""
    filled: dict[str, Any] = {}
    properties: Mapping[str, Any] = params.requested_schema.get("properties") or {}
    for name, definition in properties.items():
        if isinstance(definition, Mapping) and "default" in definition:
            filled[name] = definition["default"]
    filled.update(content or {})
    return filled


def _subscribe_before_2026(client: Client, uri: str) -> Awaitable[EmptyResult]:
    """``resources/subscribe``: how the revisions before 2026-07-28 subscribe (2026 subscriptions ride the listen
    stream instead); the SDK's warning about its removal is for 2026 code paths, and is silenced at import."""
    return client.subscribe_resource(uri)  # pyright: ignore[reportDeprecated]


def _change_kinds(client: Client) -> dict[str, bool]:
    """Which list changes the server announces (``listChanged`` in its capabilities)."""
    capabilities = client.server_capabilities
    return {
        "tools_list_changed": bool(capabilities.tools and capabilities.tools.list_changed),
        "prompts_list_changed": bool(capabilities.prompts and capabilities.prompts.list_changed),
        "resources_list_changed": bool(capabilities.resources and capabilities.resources.list_changed),
    }


def _announces_changes_by_subscription(client: Client) -> bool:
    modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
    return modern and any(_change_kinds(client).values())


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
