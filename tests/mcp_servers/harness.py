"""Run the first-party servers as real subprocesses and talk to them through a real ``mcp.Client``.

Each test module starts a server once per transport (stdio, streamable HTTP) and shares it between its tests;
tests keep apart by acting as a fresh user id each (the ``user`` fixture).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, RequestParamsMeta

from mcp_servers._common import USER_META_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_TOKEN = "test-service-token-0123456789abcdef"
STARTUP_TIMEOUT_SECONDS = 30.0
TransportName = Literal["stdio", "streamable-http"]
TRANSPORTS: tuple[TransportName, ...] = ("stdio", "streamable-http")

# uvicorn's start-up line; with --port 0 it names the port the OS picked.
_LISTENING = re.compile(r"Uvicorn running on http://([\w.\[\]:-]+:\d+)")


def server_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without a stray service token, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key != "MCP_SERVICE_TOKEN"}
    env.update(extra)
    return env


@dataclass(frozen=True, slots=True)
class HttpServer:
    url: str
    token: str
    log: list[str]


@contextmanager
def http_server(module: str, env: Mapping[str, str], *, token: str = SERVICE_TOKEN) -> Generator[HttpServer]:
    """``python -m <module> --transport streamable-http --port 0``, stopped on exit.

    Ready once uvicorn logs that it is listening (read from stderr, which is drained for the whole run so the
    server never blocks on a full pipe).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--transport", "streamable-http", "--port", "0"],
        cwd=REPO_ROOT,
        env=server_env({**env, "MCP_SERVICE_TOKEN": token}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    addresses: list[str] = []
    settled = threading.Event()  # listening, or the process ended first

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            if not addresses and (match := _LISTENING.search(line)):
                addresses.append(match[1])
                settled.set()
        settled.set()

    reader = threading.Thread(target=drain, name=f"{module}-stderr", daemon=True)
    reader.start()
    try:
        settled.wait(STARTUP_TIMEOUT_SECONDS)
        if not addresses:
            raise RuntimeError(f"{module} did not start listening:\n{''.join(log)}")
        yield HttpServer(url=f"http://{addresses[0]}/mcp", token=token, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


@asynccontextmanager
async def connect_stdio(module: str, env: Mapping[str, str]) -> AsyncGenerator[Client]:
    async with connect_python(["-m", module], env) as client:
        yield client


@asynccontextmanager
async def connect_python(args: Sequence[str], env: Mapping[str, str]) -> AsyncGenerator[Client]:
    """A stdio client of ``python <args>``, run by the test's interpreter from the repository root."""
    params = StdioServerParameters(command=sys.executable, args=list(args), env=server_env(env), cwd=str(REPO_ROOT))
    async with Client(params) as client:
        yield client


@asynccontextmanager
async def connect_http(url: str, token: str | None) -> AsyncGenerator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


@asynccontextmanager
async def held_open(connect: Callable[[], AbstractAsyncContextManager[Client]]) -> AsyncGenerator[Client]:
    """Keep a connection open in a task of its own so a module-scoped fixture can share it.

    pytest-asyncio may set a fixture up and tear it down in different tasks, while the anyio scopes inside
    ``Client`` must be left by the task that entered them.
    """
    opened: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
    close = asyncio.Event()

    async def hold() -> None:
        async with connect() as client:
            opened.set_result(client)
            await close.wait()

    holder = asyncio.create_task(hold())
    try:
        await asyncio.wait({holder, opened}, timeout=STARTUP_TIMEOUT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        if holder.done() and not opened.done():
            holder.result()  # raises why the connection failed
        if not opened.done():
            raise TimeoutError(f"no MCP connection within {STARTUP_TIMEOUT_SECONDS} s")
        yield opened.result()
    finally:
        close.set()
        if opened.done():
            await holder  # closes the connection, raising if that fails
        else:
            holder.cancel()
            await asyncio.gather(holder, return_exceptions=True)


@asynccontextmanager
async def shared_client(
    request: pytest.FixtureRequest, module: str, env: Mapping[str, str], http_fixture: str
) -> AsyncGenerator[Client]:
    """A client of ``module`` over ``request.param``'s transport; HTTP goes to the fixture named ``http_fixture``."""
    transport: TransportName = request.param
    if transport == "stdio":
        async with held_open(lambda: connect_stdio(module, env)) as client:
            yield client
        return
    server: HttpServer = request.getfixturevalue(http_fixture)
    async with held_open(lambda: connect_http(server.url, server.token)) as client:
        yield client


async def call(client: Client, tool: str, arguments: dict[str, Any] | None = None, *, user: str) -> CallToolResult:
    """Call ``tool`` as ``user``, the way the orchestrator does: the user id in the request's ``_meta``."""
    meta: RequestParamsMeta = {USER_META_KEY: user}
    return await client.call_tool(tool, arguments or {}, meta=meta)


async def ok(client: Client, tool: str, arguments: dict[str, Any] | None = None, *, user: str) -> dict[str, Any]:
    """The structured result of a call that must succeed."""
    result = await call(client, tool, arguments, user=user)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content
