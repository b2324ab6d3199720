"""One user's sign-in to one protected MCP server: the OAuth 2.1 authorization code flow, done by the MCP SDK.

The SDK's ``OAuthClientProvider`` does the protocol: protected resource metadata and authorization server metadata
discovery (with their fallbacks and issuer checks), dynamic client registration, a client ID metadata document or
pre-registered credentials, scope selection, PKCE, the ``resource`` parameter, and the ``iss`` check of the
authorization response. It runs here around one request to the server, made without credentials so the server
answers 401 and the provider takes over; what this module adds is the product around it:

* the authorization URL is checked (https, or http on a loopback address) and handed to ``present``, which shows it
  to the user (a card in the conversation, or a redirect from the servers page); nothing here opens it;
* the authorization response comes back through our callback route and ``receive``, from whichever replica;
* the assistant's client registration is shared by every user of the server (``GrantVault``), and the tokens become
  a ``Grant`` with what refreshing and revoking them needs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from mcp.client.auth import OAuthClientProvider, OAuthFlowError
from mcp.client.auth.utils import union_scopes
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp_types import LATEST_PROTOCOL_VERSION
from pydantic import AnyUrl, ValidationError

from orchestrator.mcp.links import safe_link
from orchestrator.mcp.oauth.grants import Grant, GrantVault, expiry
from orchestrator.mcp.oauth.inbox import Callback
from orchestrator.mcp.types import ServerConfig

logger = logging.getLogger(__name__)

_PING: Final = {"jsonrpc": "2.0", "id": "sign-in", "method": "ping"}
"""The request the sign-in is made around: harmless to any server, refused with 401 by a protected one."""


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """How the assistant presents itself to authorization servers.

    Args:
        redirect_uri: our callback, under ``PUBLIC_URL``.
        client_name: shown on consent pages.
        metadata_url: a client ID metadata document (https, with a path) that authorization servers supporting
            them accept as the client ID instead of a registration.
    """

    redirect_uri: str
    client_name: str = "MCP Assistant"
    metadata_url: str | None = None

    def metadata(self) -> OAuthClientMetadata:
        return OAuthClientMetadata(
            client_name=self.client_name,
            redirect_uris=[AnyUrl(self.redirect_uri)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            application_type="web" if self.redirect_uri.startswith("https://") else "native",
        )


Present = Callable[[str, str], Awaitable[None]]
"""``(authorization_url, state)``: show the user where to sign in; returns at once."""
Receive = Callable[[str], Awaitable[Callback]]
"""``state`` -> the authorization response; raises ``OAuthFlowError`` when none comes."""


class SignInRefused(Exception):
    """The sign-in did not produce a usable grant; the message says why, for the user."""


async def sign_in(
    server: ServerConfig,
    identity: ClientIdentity,
    vault: GrantVault,
    *,
    present: Present,
    receive: Receive,
    scope: str | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> Grant:
    """Run the authorization code flow for ``server`` and return the grant.

    Args:
        server: an HTTP server.
        identity: the assistant as an OAuth client.
        vault: where the assistant's client registration for the server is kept and shared.
        present: shows the authorization URL to the user.
        receive: waits for the authorization response.
        scope: scopes to ask for besides those the server names (a step-up after ``insufficient_scope``).
        transport: the HTTP transport (the network by default).

    Raises:
        SignInRefused: discovery, registration, the user's consent or the token request failed, or the server still
            refuses the new token.
    """
    assert server.url is not None
    pending: list[str] = []  # the state of the authorization request the provider made

    async def redirect(url: str) -> None:
        pending.append(_checked_state(url))
        await present(url, pending[-1])

    async def callback() -> AuthorizationCodeResult:
        return await _received(pending[-1], receive)

    provider = _Provider(
        server_url=server.url,
        client_metadata=identity.metadata(),
        storage=_RegistrationStorage(server, vault),
        redirect_handler=redirect,
        callback_handler=callback,
        client_metadata_url=identity.metadata_url,
    )
    provider.extra_scope = union_scopes(server.oauth.scope if server.oauth else None, scope)
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": LATEST_PROTOCOL_VERSION,
        **{name: value for name, value in server.headers.items() if name.lower() != "authorization"},
    }
    try:
        async with httpx2.AsyncClient(
            auth=provider, transport=transport, timeout=server.connect_timeout_seconds, follow_redirects=False
        ) as client:
            response = await client.post(server.url, json=_PING, headers=headers)
    except (OAuthFlowError, SignInRefused) as exc:
        raise SignInRefused(str(exc)) from exc
    except ValidationError as exc:  # metadata, a registration or a token response that is not what OAuth says
        raise SignInRefused(
            f"the authorization server sent something invalid ({exc.error_count()} problem(s))"
        ) from exc
    except httpx2.HTTPError as exc:
        raise SignInRefused(f"the server or its authorization server could not be reached ({exc})") from exc
    if response.status_code in (401, 403):
        raise SignInRefused(f"the server refused the new token (HTTP {response.status_code})")
    tokens = provider.context.current_tokens
    if tokens is None:
        raise SignInRefused("the server let the request through without asking anyone to sign in")
    return _grant(provider, tokens, vault)


class _Provider(OAuthClientProvider):
    """The SDK's provider, with the scopes of a step-up (and the servers file's) added to those it selects."""

    extra_scope: str | None = None

    async def _perform_authorization_code_grant(self) -> tuple[str, str]:
        metadata = self.context.client_metadata
        metadata.scope = union_scopes(metadata.scope, self.extra_scope)
        return await super()._perform_authorization_code_grant()


def _checked_state(url: str) -> str:
    """The ``state`` of an authorization URL that may be shown to the user.

    Raises:
        SignInRefused: the URL is not https (nor http on a loopback address), or carries no state.
    """
    parts = urlsplit(url)
    if not safe_link(url):
        raise SignInRefused(
            f"the authorization server's sign-in page {parts.scheme}://{parts.netloc}{parts.path} is not https "
            "(plain http is allowed only on this machine); refused"
        )
    states = parse_qs(parts.query).get("state")
    if not states:
        raise SignInRefused("the authorization request has no state")
    return states[0]


async def _received(state: str, receive: Receive) -> AuthorizationCodeResult:
    callback = await receive(state)
    if callback.error is not None:
        detail = f": {callback.error_description}" if callback.error_description else ""
        raise SignInRefused(f"the authorization server answered {callback.error}{detail}")
    if not callback.code:
        raise SignInRefused("the authorization server sent no code")
    return AuthorizationCodeResult(code=callback.code, state=callback.state, iss=callback.iss)


class _RegistrationStorage:
    """The SDK's ``TokenStorage`` for one sign-in: the client registration is shared, tokens start empty.

    Credentials from the servers file (``oauth.clientId``) come first; otherwise the registration the assistant
    made earlier with the server's authorization server (the SDK registers anew when its issuer changed).
    """

    def __init__(self, server: ServerConfig, vault: GrantVault) -> None:
        self._server = server
        self._vault = vault
        self.tokens: OAuthToken | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        configured = self._server.oauth
        if configured is not None and configured.client_id is not None:
            return OAuthClientInformationFull(
                client_id=configured.client_id,
                client_secret=configured.client_secret.get_secret_value() if configured.client_secret else None,
                token_endpoint_auth_method=configured.token_endpoint_auth_method,
            )
        return await self._vault.load_client(self._server.id)

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        await self._vault.save_client(self._server.id, client_info)


def _grant(provider: OAuthClientProvider, tokens: OAuthToken, vault: GrantVault) -> Grant:
    context = provider.context
    metadata = context.oauth_metadata
    base = context.get_authorization_base_url(context.server_url)
    client = context.client_info
    if client is None:
        raise SignInRefused("the sign-in ended without a client registration")
    resource = context.get_resource_url() if context.should_include_resource_param(context.protocol_version) else None
    return Grant(
        issuer=str(metadata.issuer) if metadata is not None else (context.auth_server_url or base),
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=expiry(tokens, vault.now()),
        scope=tokens.scope,
        token_endpoint=str(metadata.token_endpoint) if metadata is not None else urljoin(base, "/token"),
        revocation_endpoint=str(metadata.revocation_endpoint) if metadata and metadata.revocation_endpoint else None,
        resource=resource,
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint_auth_method=client.token_endpoint_auth_method,
    )
