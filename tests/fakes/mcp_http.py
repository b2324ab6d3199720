"""Run ``tests.fakes.mcp_test_server`` over HTTP in a subprocess for the length of a test."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio
from anyio.abc import Process

REPO_ROOT = Path(__file__).resolve().parents[2]

HttpTransport = Literal["streamable-http", "sse"]


@dataclass
class HttpTestServer:
    """A running test server; ``url`` is its MCP endpoint."""

    transport: HttpTransport
    port: int
    process: Process

    @property
    def url(self) -> str:
        path = "/sse" if self.transport == "sse" else "/mcp"
        return f"http://127.0.0.1:{self.port}{path}"

    def kill(self) -> None:
        """Kill the server at once, as a crash would."""
        if self.process.returncode is None:
            self.process.kill()


@asynccontextmanager
async def running_http_server(
    transport: HttpTransport, *, name: str = "http", port: int = 0, start_timeout: float = 20.0
) -> AsyncGenerator[HttpTestServer]:
    """Start the test server, wait (at most ``start_timeout`` seconds) until it listens, and stop it afterwards.

    Args:
        transport: ``streamable-http`` (endpoint ``/mcp``) or ``sse`` (endpoint ``/sse``).
        name: what the server's ``name`` tool answers.
        port: the port to listen on; 0 picks a free one. Pass a previous server's port to restart it in place.
        start_timeout: seconds to wait for the server to listen.
    """
    command = [sys.executable, "-m", "tests.fakes.mcp_test_server", "--transport", transport]
    command += ["--port", str(port), "--name", name]
    process = await anyio.open_process(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stderr=None)
    try:
        with anyio.fail_after(start_timeout):
            bound = await _read_port(process)
        yield HttpTestServer(transport=transport, port=bound, process=process)
    finally:
        await _stop(process)


async def _read_port(process: Process) -> int:
    assert process.stdout is not None
    received = b""
    while b"\n" not in received:
        try:
            received += await process.stdout.receive()
        except anyio.EndOfStream:
            raise RuntimeError(f"the test server exited before listening (code {process.returncode})") from None
    line = received.split(b"\n", 1)[0].decode()
    prefix = "listening on "
    if not line.startswith(prefix):
        raise RuntimeError(f"unexpected first line from the test server: {line!r}")
    return int(line.removeprefix(prefix))


async def _stop(process: Process) -> None:
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.terminate()
            with anyio.move_on_after(5):
                await process.wait()
        if process.returncode is None:
            process.kill()
            with anyio.move_on_after(5):
                await process.wait()
        await process.aclose()


@dataclass
class ProtectedTestServer:
    """A running ``tests.fakes.protected_mcp_server``: ``url`` is its MCP endpoint, ``base`` its authorization
    server."""

    port: int
    process: Process

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"


@asynccontextmanager
async def running_protected_server(
    *, token_lifetime: int = 3600, refresh_delay: float = 0.0, start_timeout: float = 20.0
) -> AsyncGenerator[ProtectedTestServer]:
    """Start the OAuth-protected test server (and its authorization server) for the block."""
    command = [sys.executable, "-m", "tests.fakes.protected_mcp_server", "--port", "0"]
    command += ["--token-lifetime", str(token_lifetime), "--refresh-delay", str(refresh_delay)]
    process = await anyio.open_process(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stderr=None)
    try:
        with anyio.fail_after(start_timeout):
            bound = await _read_port(process)
        yield ProtectedTestServer(port=bound, process=process)
    finally:
        await _stop(process)
