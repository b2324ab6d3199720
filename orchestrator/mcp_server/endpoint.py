"""``/mcp``: the assistant's MCP server over streamable HTTP, for requests with an API key (or a sign-in).

Stateless: every request is served on its own, so any replica can answer any request and nothing needs to be
shared between them. The request's caller is resolved here, before the SDK sees it, and travels in the ASGI scope.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from orchestrator.deps import authenticate
from orchestrator.errors import AuthenticationFailed
from orchestrator.lifespan import AppState
from orchestrator.mcp_server.server import CALLER_SCOPE_KEY, STATE_SCOPE_KEY, create_server

PATH = "/mcp"
METHODS = ["GET", "POST", "DELETE"]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class McpEndpoint:
    """The ASGI app served at ``/mcp``; ``run`` it for as long as the app serves."""

    def __init__(self, *, max_request_bytes: int) -> None:
        self._manager = StreamableHTTPSessionManager(
            create_server(), stateless=True, max_request_body_size=max_request_bytes
        )

    def run(self) -> AbstractAsyncContextManager[None]:
        return self._manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: AppState = scope["app"].state.assistant
        request = Request(scope, receive)
        try:
            caller = await authenticate(state, request.headers.get("authorization"))
        except AuthenticationFailed as exc:
            response = JSONResponse(
                {"detail": str(exc), "code": "unauthenticated"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        if state.known_users.get(caller.user.id) != caller.user:
            await state.store.ensure_user(caller.user)
            state.known_users.remember(caller.user)
        await self._manager.handle_request({**scope, CALLER_SCOPE_KEY: caller, STATE_SCOPE_KEY: state}, receive, send)


def serving_mcp(lifespan: Lifespan, endpoint: McpEndpoint) -> Lifespan:
    """``lifespan``, with the MCP endpoint running inside it (after the state opens, stopped before it closes)."""

    @asynccontextmanager
    async def both(app: FastAPI) -> AsyncGenerator[None]:
        async with lifespan(app), endpoint.run():
            yield

    return both


__all__ = ["METHODS", "PATH", "McpEndpoint", "serving_mcp"]
