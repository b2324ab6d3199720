"""A real MCP server protected by OAuth 2.1, with its own authorization server, built on the MCP SDK's server auth.

Run it as ``python -m tests.fakes.protected_mcp_server [--port N] [--token-lifetime S] [--refresh-delay S]``. It binds
first and prints ``listening on <port>``; ``tests.fakes.protected_http`` starts and stops it.

The SDK serves the protocol: protected resource metadata (RFC 9728), authorization server metadata (RFC 8414),
dynamic client registration, the authorization and token endpoints (PKCE, ``resource``), revocation, and the bearer
check on ``/mcp``. This module adds an in-memory provider whose authorization endpoint sends the user to a consent
page (``/consent``) where a person, or a test posting the form, allows or denies the request as some account; the
redirect back carries ``code``, ``state`` and ``iss``. Refresh tokens are rotated: each is accepted once.

``/_stats`` (no auth) tells tests what happened: tokens issued, refreshes, revocations, the bearer tokens ``/mcp`` saw.
Tools: ``whoami`` (the account that consented, from the token) and ``echo``.
"""

from __future__ import annotations

import argparse
import html
import secrets
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import anyio
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    IdentityAssertionParams,
    RefreshToken,
    TokenError,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp_types import ToolAnnotations
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

SCOPES = ["mcp:tools"]


@dataclass
class _Pending:
    client_id: str
    params: AuthorizationParams


@dataclass
class Stats:
    tokens_issued: int = 0
    refreshes: int = 0
    refresh_refused: int = 0
    registrations: int = 0
    revoked: list[str] = field(default_factory=list[str])
    bearer_tokens: list[str] = field(default_factory=list[str])


class InMemoryAuthorizationServer:
    """The SDK's ``OAuthAuthorizationServerProvider``, in memory, with a consent page of its own."""

    def __init__(self, issuer: str, *, token_lifetime: int, refresh_delay: float) -> None:
        self.issuer = issuer
        self.token_lifetime = token_lifetime
        self.refresh_delay = refresh_delay
        self.stats = Stats()
        self._clients: dict[str, OAuthClientInformationFull] = {}
        self._pending: dict[str, _Pending] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._access: dict[str, AccessToken] = {}

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self._clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.stats.registrations += 1
        self._clients[client_info.client_id] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        request_id = secrets.token_urlsafe(16)
        self._pending[request_id] = _Pending(client.client_id, params)
        return f"{self.issuer}/consent?{urlencode({'request': request_id})}"

    def consent(self, request_id: str, account: str, allow: bool) -> str | None:
        """Where the browser goes after the consent form: back to the client with a code, or with an error."""
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return None
        params = pending.params
        if not allow:
            query = {"error": "access_denied", "error_description": "the user said no", "state": params.state}
        else:
            code = secrets.token_urlsafe(32)
            self._codes[code] = AuthorizationCode(
                code=code,
                scopes=params.scopes or SCOPES,
                expires_at=time.time() + 300,
                client_id=pending.client_id,
                code_challenge=params.code_challenge,
                redirect_uri=params.redirect_uri,
                redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
                resource=params.resource,
                subject=account,
            )
            query = {"code": code, "state": params.state, "iss": self.issuer}
        clean = {key: value for key, value in query.items() if value is not None}
        return f"{params.redirect_uri}?{urlencode(clean)}"

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        code = self._codes.get(authorization_code)
        return code if code is not None and code.client_id == client.client_id else None

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        self._codes.pop(authorization_code.code, None)
        return self._issue(
            client.client_id, authorization_code.scopes, authorization_code.resource, authorization_code.subject
        )

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        token = self._refresh.get(refresh_token)
        if token is None or token.client_id != client.client_id:
            self.stats.refresh_refused += 1
            return None
        return token

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        await anyio.sleep(self.refresh_delay)  # widens the window in which a second refresh could race this one
        if self._refresh.pop(refresh_token.token, None) is None:  # rotated: each refresh token works once
            self.stats.refresh_refused += 1
            raise TokenError("invalid_grant", "refresh token already used")
        self.stats.refreshes += 1
        return self._issue(
            client.client_id, scopes or refresh_token.scopes, refresh_token.resource, refresh_token.subject
        )

    async def exchange_identity_assertion(
        self, client: OAuthClientInformationFull, params: IdentityAssertionParams
    ) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "this server signs people in with the authorization code flow")

    async def load_access_token(self, token: str) -> AccessToken | None:
        access = self._access.get(token)
        if access is None or (access.expires_at is not None and access.expires_at < time.time()):
            return None
        return access

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.stats.revoked.append(token.token)
        self._access.pop(token.token, None)
        self._refresh.pop(token.token, None)

    def _issue(self, client_id: str, scopes: list[str], resource: str | None, subject: str | None) -> OAuthToken:
        self.stats.tokens_issued += 1
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        expires = int(time.time()) + self.token_lifetime
        self._access[access] = AccessToken(
            token=access, client_id=client_id, scopes=scopes, expires_at=expires, resource=resource, subject=subject
        )
        self._refresh[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource, subject=subject
        )
        return OAuthToken(
            access_token=access, expires_in=self.token_lifetime, refresh_token=refresh, scope=" ".join(scopes)
        )


class _RecordBearer:
    """Notes the bearer token of every request to the MCP endpoint, before the SDK checks it."""

    def __init__(self, app: ASGIApp, stats: Stats) -> None:
        self._app = app
        self._stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/mcp"):
            for name, value in scope["headers"]:
                if name == b"authorization":
                    self._stats.bearer_tokens.append(value.decode().removeprefix("Bearer "))
        await self._app(scope, receive, send)


def build(port: int, *, token_lifetime: int, refresh_delay: float) -> tuple[ASGIApp, InMemoryAuthorizationServer]:
    base = f"http://127.0.0.1:{port}"
    provider = InMemoryAuthorizationServer(base, token_lifetime=token_lifetime, refresh_delay=refresh_delay)
    server = MCPServer(
        "protected",
        auth_server_provider=provider,
        auth=AuthSettings(
            issuer_url=base,  # pyright: ignore[reportArgumentType] - pydantic validates the string
            resource_server_url=f"{base}/mcp",  # pyright: ignore[reportArgumentType]
            required_scopes=SCOPES,
            client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=SCOPES),
            revocation_options=RevocationOptions(enabled=True),
            validate_token_resource=False,
        ),
    )

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def whoami() -> str:
        """The account that allowed this client."""
        token = get_access_token()
        return f"signed in as {token.subject if token else 'nobody'}"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def echo(text: str) -> str:
        """Say ``text`` back."""
        return text

    @server.custom_route("/consent", methods=["GET"])
    async def consent_page(request: Request) -> Response:
        request_id = html.escape(request.query_params.get("request", ""))
        page = (
            "<!doctype html><title>Allow access</title><h1>Allow MCP Assistant to use protected tools?</h1>"
            f'<form method="post" action="/consent"><input type="hidden" name="request" value="{request_id}">'
            '<label>Account <input name="account" value="alice"></label>'
            '<button name="decision" value="allow">Allow</button>'
            '<button name="decision" value="deny">Deny</button></form>'
        )
        return HTMLResponse(page)

    @server.custom_route("/consent", methods=["POST"])
    async def consent_answer(request: Request) -> Response:
        form = await request.form()
        target = provider.consent(
            str(form.get("request", "")), str(form.get("account", "alice")), form.get("decision") == "allow"
        )
        if target is None:
            return HTMLResponse("unknown or finished request", status_code=400)
        return RedirectResponse(target, status_code=302)

    @server.custom_route("/_stats", methods=["GET"])
    async def stats(_request: Request) -> Response:
        s = provider.stats
        return JSONResponse(
            {
                "tokens_issued": s.tokens_issued,
                "refreshes": s.refreshes,
                "refresh_refused": s.refresh_refused,
                "registrations": s.registrations,
                "revoked": s.revoked,
                "bearer_tokens": s.bearer_tokens,
            }
        )

    return _RecordBearer(server.streamable_http_app(), provider.stats), provider


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free one")
    parser.add_argument("--token-lifetime", type=int, default=3600, help="access token lifetime, seconds")
    parser.add_argument("--refresh-delay", type=float, default=0.0, help="seconds each refresh takes")
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    port: int = sock.getsockname()[1]
    app, _ = build(port, token_lifetime=args.token_lifetime, refresh_delay=args.refresh_delay)
    print(f"listening on {port}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    anyio.run(uvicorn.Server(config).serve, [sock])


if __name__ == "__main__":
    main()
