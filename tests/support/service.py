"""Run the real orchestrator app under uvicorn inside the test's event loop, on a free port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from orchestrator.app import create_app
from orchestrator.lifespan import AppState
from orchestrator.settings import Settings

START_TIMEOUT_SECONDS = 30.0


@dataclass
class Service:
    url: str
    state: AppState
    client: httpx.AsyncClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def running_service(settings: Settings, *, settle: bool = True) -> AsyncGenerator[Service]:
    """Serve ``create_app(settings)`` over real HTTP until the block ends.

    uvicorn runs the app's lifespan in its own task, so the MCP connections it opens are closed by the task that
    opened them. With ``settle`` the block starts once every MCP server had its first connection attempt.
    """
    port = free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    app = create_app(settings)
    server = uvicorn.Server(
        # As ``python -m orchestrator`` runs it: X-Forwarded-For is ours to judge (TRUSTED_PROXIES), not uvicorn's.
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on", proxy_headers=False
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(START_TIMEOUT_SECONDS):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the service stopped during start-up")
                await asyncio.sleep(0.01)
        state: AppState = app.state.assistant
        if settle:
            await state.registry.wait_until_settled(START_TIMEOUT_SECONDS)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield Service(f"http://127.0.0.1:{port}", state, client)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)
