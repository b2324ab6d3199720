"""A real MCP server with tools for fault tests.

Run it as ``python -m tests.fakes.mcp_test_server --transport stdio|streamable-http|sse [--port N] [--name X]``.
Over HTTP it binds before serving and prints ``listening on <port>`` on stdout, so a test can wait for that line
instead of polling (``--port 0`` picks a free port). ``tests.fakes.mcp_http`` starts and stops it.

Tools: ``echo``, ``add``, ``name`` (the ``--name``), ``slow`` (reports progress), ``hang`` (reports progress once, then
never answers; records its cancellation), ``cancellations`` (how many ``hang`` calls were cancelled), ``crash`` (the
process exits mid-call), ``fail`` (an error result, or a protocol error), ``flood`` (a huge result), ``noisy`` (floods
stderr, for a while or until the process exits), ``whoami`` (the user id from the request's ``_meta``), ``add_tool``
(registers a tool, or redefines an existing one, and announces the change), ``lookup`` (read-only: its first call of a
key starting with ``slow`` hangs, later ones answer) and ``send`` (not idempotent: never answers). ``lookup`` and
``send`` write one line per call (``lookup <key>``, ``send``) to ``--calls-file`` (or ``MCP_TEST_CALLS_FILE``), so a
test counts calls across restarts of the server. ``tools/list`` answers in pages of ``--page-size`` tools, so clients
must follow cursors.

Annotations: the tools that change nothing are read-only; ``crash`` and ``add_tool`` are neither destructive nor
open-world, so they run without approval too. For approvals and concurrency: ``forget`` is destructive (it asks),
``read`` (read-only) and ``write`` (neither read-only nor idempotent) take ``seconds`` and answer how many ``read``
and ``write`` calls ran at once while they ran (themselves included).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Literal

import anyio
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, ListToolsResult, PaginatedRequestParams, ToolAnnotations
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.applications import Starlette

from orchestrator.mcp.types import USER_META_KEY

CANCEL_FILE_ENV = "MCP_TEST_CANCEL_FILE"
"""Environment variable naming a file that gets one line per cancelled ``hang`` call (like ``--cancel-file``)."""

CALLS_FILE_ENV = "MCP_TEST_CALLS_FILE"
"""Environment variable naming a file that gets one line per ``lookup`` or ``send`` call (like ``--calls-file``)."""

TransportName = Literal["stdio", "streamable-http", "sse"]

READ_ONLY = ToolAnnotations(read_only_hint=True)
LOCAL_CHANGE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)


class _Overlap:
    """How many calls run at once: each call learns the most that ran together while it ran."""

    def __init__(self) -> None:
        self._running: list[list[int]] = []

    async def run(self, seconds: float) -> int:
        mine = [0]
        self._running.append(mine)
        for peak in self._running:
            peak[0] = max(peak[0], len(self._running))
        try:
            await anyio.sleep(seconds)
        finally:
            self._running.remove(mine)
        return mine[0]


class _Calls:
    """Counts calls by tool, in a file when given one (so the count survives the server's process)."""

    def __init__(self, record_file: Path | None) -> None:
        self._record_file = record_file
        self._counts: dict[str, int] = {}

    def record(self, tool: str) -> int:
        """Record a call; returns how many calls of ``tool`` there were before it."""
        if self._record_file is None:
            earlier = self._counts.get(tool, 0)
            self._counts[tool] = earlier + 1
            return earlier
        lines = self._record_file.read_text(encoding="utf-8").splitlines() if self._record_file.exists() else []
        with self._record_file.open("a", encoding="utf-8") as file:
            file.write(tool + "\n")
        return lines.count(tool)


class _Cancellations:
    """Counts ``hang`` calls that were cancelled, and lets a tool wait for the next one."""

    def __init__(self, record_file: Path | None) -> None:
        self.count = 0
        self._record_file = record_file
        self._changed: anyio.Event | None = None

    def record(self) -> None:
        self.count += 1
        if self._record_file is not None:
            with self._record_file.open("a", encoding="utf-8") as file:
                file.write("cancelled\n")
        if self._changed is not None:
            self._changed.set()

    async def wait_for(self, count: int, seconds: float) -> int:
        with anyio.move_on_after(seconds):
            while self.count < count:
                self._changed = anyio.Event()
                await self._changed.wait()
        return self.count


class _PagedServer(MCPServer):
    """Answers ``tools/list`` in pages, as large servers do."""

    def __init__(self, name: str, page_size: int) -> None:
        super().__init__(name)
        self.page_size = page_size

    async def _handle_list_tools(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        tools = await self.list_tools()
        if self.page_size <= 0:
            return ListToolsResult(tools=tools)
        start = int(params.cursor) if params is not None and params.cursor else 0
        end = start + self.page_size
        return ListToolsResult(tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None)


def build_server(
    name: str = "test", *, page_size: int = 4, cancel_file: Path | None = None, calls_file: Path | None = None
) -> MCPServer:
    server = _PagedServer(name, page_size)
    cancellations = _Cancellations(cancel_file)
    overlap = _Overlap()
    calls = _Calls(calls_file)

    @server.tool(annotations=READ_ONLY)
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool(annotations=READ_ONLY)
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    @server.tool(name="name", annotations=READ_ONLY)
    def server_name() -> str:
        """This server's --name."""
        return name

    @server.tool(annotations=READ_ONLY)
    async def slow(seconds: float, ctx: Context) -> str:
        """Take ``seconds``, reporting progress in three steps."""
        for step in range(3):
            await ctx.report_progress(step, 3, f"step {step + 1} of 3")
            await anyio.sleep(seconds / 3)
        await ctx.report_progress(3, 3, "done")
        return "finished"

    @server.tool(annotations=READ_ONLY)
    async def hang(ctx: Context) -> str:
        """Never answer (after one progress note saying the call is running); a cancellation is recorded."""
        try:
            await ctx.report_progress(0, None, "waiting")
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancellations.record()
            raise
        return "unreachable"

    @server.tool(name="cancellations", annotations=READ_ONLY)
    async def count_cancellations(at_least: int = 1, wait_seconds: float = 5.0) -> int:
        """How many hang calls were cancelled, waiting up to ``wait_seconds`` for ``at_least``."""
        return await cancellations.wait_for(at_least, wait_seconds)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def lookup(key: str) -> str:
        """Look ``key`` up (read-only). The first call for a key starting with "slow" hangs; others answer."""
        if calls.record(f"lookup {key}") == 0 and key.startswith("slow"):
            await anyio.sleep_forever()
        return f"{key} is 42"

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False))
    async def send(text: str) -> str:
        """Send ``text`` somewhere (not idempotent: calling twice sends twice). Never answers."""
        calls.record("send")
        await anyio.sleep_forever()
        return "unreachable"

    @server.tool(annotations=LOCAL_CHANGE)
    def crash() -> str:
        """Exit the process in the middle of the call."""
        os._exit(3)

    @server.tool(annotations=READ_ONLY)
    def fail(message: str = "this tool always fails", protocol: bool = False) -> str:
        """Report an error result, or with ``protocol`` answer with a JSON-RPC error instead."""
        if protocol:
            raise MCPError(code=INTERNAL_ERROR, message=message)
        raise ToolError(message)

    @server.tool(annotations=READ_ONLY)
    def flood(size: int) -> str:
        """Return ``size`` characters."""
        return "x" * size

    @server.tool(annotations=READ_ONLY)
    def noisy(lines: int = 5000, forever: bool = False) -> str:
        """Write ``lines`` long lines to stderr, then answer; or answer at once and write as fast as possible until
        the process exits."""
        if forever:
            threading.Thread(target=_write_stderr_forever, daemon=True).start()
            return "writing forever"
        line = "noise " * 150
        for _ in range(lines):
            print(line, file=sys.stderr)
        sys.stderr.flush()
        return f"wrote {lines} lines"

    @server.tool(annotations=READ_ONLY)
    async def whoami(ctx: Context) -> str:
        """The user id the client sent in the request's _meta."""
        meta = ctx.request_context.meta or {}
        return str(meta.get(USER_META_KEY, "anonymous"))

    @server.tool(annotations=READ_ONLY)
    async def trace_context(ctx: Context) -> str:
        """The ``traceparent`` header of the HTTP request that carried this call (empty over stdio or without one)."""
        request: object = ctx.request_context.request
        headers = getattr(request, "headers", None)
        return str(headers.get("traceparent", "")) if headers is not None else ""

    @server.tool(annotations=LOCAL_CHANGE)
    async def add_tool(tool_name: str, ctx: Context, description: str = "Added at run time.") -> str:
        """Register a tool called ``tool_name`` and announce that the tool list changed.

        A tool of that name is replaced: its description and arguments change behind the client's back.
        """

        def added() -> str:
            return f"{tool_name} is here"

        with contextlib.suppress(ToolError):  # not there yet
            server.remove_tool(tool_name)
        server.add_tool(added, name=tool_name, description=description, annotations=READ_ONLY)
        await ctx.notify_tools_changed()  # 2026-07-28: to subscriptions/listen streams
        if ctx.request_context.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            await ctx.request_context.session.send_tool_list_changed()  # earlier versions: a plain notification
        return f"added {tool_name}"

    @server.tool(annotations=DESTRUCTIVE)
    def forget(item: str) -> str:
        """Forget ``item`` (destructive: the user is asked first)."""
        return f"forgot {item}"

    @server.tool(annotations=READ_ONLY)
    async def read(seconds: float) -> int:
        """Take ``seconds``; answer how many read and write calls ran at once meanwhile."""
        return await overlap.run(seconds)

    @server.tool(annotations=LOCAL_CHANGE)
    async def write(seconds: float) -> int:
        """Like ``read``, but a change that is not idempotent (so never run beside other calls)."""
        return await overlap.run(seconds)

    return server


def _write_stderr_forever() -> None:
    lines = b"noise\n" * 10_000  # many short lines in few writes: more lines than a reader can look at one by one
    try:
        while True:
            os.write(sys.stderr.fileno(), lines)
    except OSError:  # the reading end is gone
        return


def serve_http(server: MCPServer, transport: TransportName, port: int) -> None:
    """Bind, say so on stdout, then serve; the line tells a waiting test the port accepts connections."""
    app: Starlette = server.sse_app() if transport == "sse" else server.streamable_http_app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    print(f"listening on {sock.getsockname()[1]}", flush=True)
    # Open streams (change subscriptions) would otherwise hold a graceful shutdown open indefinitely.
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    anyio.run(uvicorn.Server(config).serve, [sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transport", choices=["stdio", "streamable-http", "sse"], default="stdio")
    parser.add_argument("--port", type=int, default=0, help="HTTP port; 0 picks a free one")
    parser.add_argument("--name", default="test")
    parser.add_argument("--page-size", type=int, default=4, help="tools per tools/list page; 0 for one page")
    parser.add_argument("--cancel-file", type=Path, default=os.environ.get(CANCEL_FILE_ENV) or None)
    parser.add_argument("--calls-file", type=Path, default=os.environ.get(CALLS_FILE_ENV) or None)
    args = parser.parse_args(argv)
    server = build_server(args.name, page_size=args.page_size, cancel_file=args.cancel_file, calls_file=args.calls_file)
    transport: TransportName = args.transport
    if transport == "stdio":
        server.run("stdio")
    else:
        serve_http(server, transport, args.port)


if __name__ == "__main__":
    main()
