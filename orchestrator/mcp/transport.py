"""Build the MCP SDK transport for a server config, and notice when it ends."""

from __future__ import annotations

import contextvars
import sys
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self, TextIO

import anyio
import httpx2
from mcp.client import Transport
from mcp.client._transport import ReadStream, TransportStreams  # listed in that module's __all__
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.message import SessionMessage

from orchestrator.mcp.stdio import MessageTooLarge, find_command, server_environment, stdio_transport
from orchestrator.mcp.types import ServerConfig
from orchestrator.telemetry.tracing import inject_trace_context

_MIN_READ_TIMEOUT = 300.0
"""Seconds an HTTP response stream may stay silent; the SDK's default. Longer tool timeouts raise it."""


OnEnd = Callable[[Exception | None], None]
"""Called once the stream of messages from a server ends, with the reason when the transport gave one."""


def open_transport(
    config: ServerConfig, *, errlog: TextIO | None, on_end: OnEnd, auth: httpx2.Auth | None = None
) -> Transport:
    """The transport for ``config``; ``on_end`` is called once the server's message stream has ended.

    A stdio ``command`` without a folder is looked up with our own scripts folder (the virtual environment's
    ``bin``) first on ``PATH``, and the server process gets that ``PATH`` too; see ``orchestrator.mcp.stdio``.

    Args:
        config: the server.
        errlog: where a stdio server's stderr goes (see ``orchestrator.mcp.stderr``); required for stdio.
        on_end: called when the stream of messages from the server ends, for example when a stdio server exits
            (no reason) or sent a message that is too large (``MessageTooLarge``).
        auth: authenticates HTTP requests to the server (an OAuth 2.1 client, for a protected server).
    """
    return _watch_end(_transport(config, errlog, auth), on_end)


def _transport(config: ServerConfig, errlog: TextIO | None, auth: httpx2.Auth | None) -> Transport:
    if config.transport == "stdio":
        if errlog is None:
            raise ValueError("a stdio server needs somewhere to send its stderr")
        assert config.command is not None  # ServerConfig validates this
        env = server_environment(config.env)
        command = find_command(config.command, env["PATH"])
        if sys.platform == "win32":  # our stdio transport is POSIX only; the SDK's has no message size limit
            params = StdioServerParameters(
                command=command, args=list(config.args), env=env, cwd=config.cwd, encoding_error_handler="replace"
            )
            return stdio_client(params, errlog=errlog)
        return stdio_transport(command, config.args, env=env, cwd=config.cwd, errlog=errlog)
    assert config.url is not None  # ServerConfig validates this
    read_timeout = max(_MIN_READ_TIMEOUT, config.tool_timeout_seconds + 30)
    if config.transport == "sse":
        return sse_client(
            config.url,
            headers=dict(config.headers),
            timeout=config.connect_timeout_seconds,
            sse_read_timeout=read_timeout,
            auth=auth,
            httpx_client_factory=_traced_client,
        )
    return _streamable_http(config.url, dict(config.headers), config.connect_timeout_seconds, read_timeout, auth)


@asynccontextmanager
async def _streamable_http(
    url: str, headers: dict[str, str], connect_timeout: float, read_timeout: float, auth: httpx2.Auth | None
) -> AsyncGenerator[TransportStreams]:
    # The SDK closes only HTTP clients it made itself; this one is ours, so it is closed here.
    timeout = httpx2.Timeout(connect_timeout, read=read_timeout)
    async with (
        _traced_client(headers, timeout, auth) as http_client,
        streamable_http_client(url, http_client=http_client) as streams,
    ):
        yield streams


def _traced_client(
    headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None, auth: httpx2.Auth | None = None
) -> httpx2.AsyncClient:
    """An HTTP client whose requests carry the W3C trace context of the call that sends them.

    The SDK sends each request in the context of the task that made it (the tool call), so its span is current.
    """
    client = create_mcp_http_client(headers, timeout, auth)
    client.event_hooks["request"].append(_add_trace_context)
    return client


async def _add_trace_context(request: httpx2.Request) -> None:
    inject_trace_context(request.headers)


@asynccontextmanager
async def _watch_end(transport: Transport, on_end: OnEnd) -> AsyncGenerator[TransportStreams]:
    async with transport as (read_stream, write_stream):
        yield _EndWatchingStream(read_stream, on_end), write_stream


class _EndWatchingStream:
    """A read stream that reports its end: the SDK fails pending requests then, but says nothing to the owner."""

    def __init__(self, inner: ReadStream[SessionMessage | Exception], on_end: OnEnd) -> None:
        self._inner = inner
        self._on_end = on_end
        self._reason: Exception | None = None

    @property
    def last_context(self) -> contextvars.Context | None:
        """The sender's context of the last message, which the SDK's dispatcher runs handlers in."""
        context: contextvars.Context | None = getattr(self._inner, "last_context", None)
        return context

    async def receive(self) -> SessionMessage | Exception:
        try:
            item = await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end(self._reason)
            raise
        if isinstance(item, MessageTooLarge):  # the transport's last word before it ends the stream
            self._reason = item
        return item

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        await self.aclose()
