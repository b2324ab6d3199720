"""What the first-party servers share: the caller's identity, tool annotations, the service-token gate, the CLI."""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast, get_args

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

USER_META_KEY = "mcp-assistant/user-id"
"""The request ``_meta`` key carrying the calling user's id.

The same value as ``orchestrator.mcp.types.USER_META_KEY``; repeated here so the servers install without the
orchestrator (a test keeps the two equal).
"""

DEFAULT_USER_ID = "local"
"""Whose data a call touches when no user id is sent: single-user use from any MCP client."""

MAX_USER_ID_CHARS = 256

Transport = Literal["stdio", "streamable-http"]
EXIT_USAGE = 2
"""The exit status for a refused command line, as argparse uses."""


class ServiceSettings(BaseSettings):
    """Settings every first-party server reads; subclasses add their own under an env prefix."""

    # ``MCP_SERVICE_TOKEN`` has no prefix: one deployment shares it between the orchestrator and its servers.
    service_token: SecretStr | None = Field(default=None, validation_alias="MCP_SERVICE_TOKEN")


def current_user_id(ctx: Context) -> str:
    """The id of the user a tool call acts for, from the request's ``_meta``.

    The orchestrator sends it on every call; a client that sends none (Claude Desktop, an IDE) acts as
    ``DEFAULT_USER_ID``. The id is trusted as given: over HTTP the service token decides who may send calls.

    Raises:
        ToolError: the id is present but not a usable string.
    """
    meta = ctx.request_context.meta
    value: object = meta.get(USER_META_KEY) if meta is not None else None
    if value is None:
        return DEFAULT_USER_ID
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_USER_ID_CHARS:
        raise ToolError(f"_meta[{USER_META_KEY!r}] must be a non-empty string of at most {MAX_USER_ID_CHARS} chars")
    return value


def tool_annotations(*, read_only: bool, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    """Hints a model and a client read to decide how careful to be; our servers only touch their own data."""
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=read_only or idempotent,
        open_world_hint=False,
    )


READ_ONLY = tool_annotations(read_only=True)


class ServiceTokenMiddleware:
    """Refuses HTTP requests that lack ``Authorization: Bearer <token>`` with 401.

    A shared secret between the orchestrator and a server it deploys, not user authentication: the SDK's OAuth
    hooks expect an authorization server, which a private service-to-service link does not have.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("the service token must not be empty")
        self._app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or self._authorised(Headers(scope=scope).get("authorization", "")):
            await self._app(scope, receive, send)
        elif scope["type"] == "http":
            response = JSONResponse(
                {"error": "unauthorized", "detail": "send Authorization: Bearer <MCP_SERVICE_TOKEN>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
        else:  # a websocket: closing before accepting refuses the handshake
            await send({"type": "websocket.close", "code": 1008})

    def _authorised(self, header: str) -> bool:
        scheme, _, supplied = header.partition(" ")
        # Constant-time comparison, made whatever the scheme, so response timing does not reveal the token.
        matches = hmac.compare_digest(supplied.strip().encode(), self._token)
        return matches and scheme.lower() == "bearer"


class UnauthenticatedExposure(Exception):
    """Serving HTTP beyond this machine without a service token, which was not explicitly allowed."""

    def __init__(self, host: str) -> None:
        super().__init__(
            f"refusing to serve on {host} without MCP_SERVICE_TOKEN: anyone who can reach it could act as any user. "
            "Set MCP_SERVICE_TOKEN (the orchestrator sends the same value), bind to 127.0.0.1, "
            "or pass --allow-unauthenticated if something else guards the port."
        )
        self.host = host


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine: ``localhost`` or a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name, which may resolve to anything
        return False


def streamable_http_app(
    server: MCPServer, *, host: str, service_token: SecretStr | None, allow_unauthenticated: bool = False
) -> ASGIApp:
    """The server's streamable HTTP app at ``/mcp``, behind the service-token gate when a token is set.

    Raises:
        UnauthenticatedExposure: no token is set, ``host`` is not a loopback address, and
            ``allow_unauthenticated`` is false.
    """
    token = service_token.get_secret_value() if service_token is not None else ""
    if not token and not is_loopback(host):
        if not allow_unauthenticated:
            raise UnauthenticatedExposure(host)
        logger.warning("serving on %s without MCP_SERVICE_TOKEN: anyone who can reach it can act as any user", host)
    app: ASGIApp = server.streamable_http_app(host=host)
    return ServiceTokenMiddleware(app, token) if token else app


@dataclass(frozen=True, slots=True)
class ServeOptions:
    transport: Transport
    host: str
    port: int
    allow_unauthenticated: bool = False


def parse_serve_options(argv: Sequence[str] | None, *, prog: str, description: str, default_port: int) -> ServeOptions:
    """Read ``--transport``, ``--host``, ``--port`` and ``--allow-unauthenticated`` from the command line."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--transport", choices=get_args(Transport), default="stdio", help="default: stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=default_port, help=f"HTTP port, 0 picks a free one (default: {default_port})"
    )
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve HTTP on a non-loopback --host without MCP_SERVICE_TOKEN (refused otherwise)",
    )
    args = parser.parse_args(argv)
    return ServeOptions(
        transport=cast(Transport, args.transport),
        host=str(args.host),
        port=int(args.port),
        allow_unauthenticated=bool(args.allow_unauthenticated),
    )


def serve(server: MCPServer, options: ServeOptions, *, service_token: SecretStr | None) -> None:
    """Run ``server`` on the chosen transport until it is stopped.

    Raises:
        SystemExit: with status 2, after a message on stderr, when HTTP would be served beyond this machine
            without a service token and ``--allow-unauthenticated`` was not given.
    """
    if options.transport == "stdio":
        server.run("stdio")
        return
    try:
        app = streamable_http_app(
            server,
            host=options.host,
            service_token=service_token,
            allow_unauthenticated=options.allow_unauthenticated,
        )
    except UnauthenticatedExposure as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from exc
    uvicorn.run(app, host=options.host, port=options.port, log_level="info")
