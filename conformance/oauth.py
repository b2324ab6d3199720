"""OAuth 2.1 for the auth scenarios: the orchestrator's own sign-in, the SDK's machine-to-machine clients, and a
headless user.

Every ``auth/*`` scenario's server answers 401 until the client authorizes.

* The authorization code scenarios run what the orchestrator runs for a user signing in to a protected server
  (:class:`ProductSignIn`, over ``orchestrator.mcp.oauth``): the SDK's ``OAuthClientProvider`` for discovery,
  registration (dynamic, the suite's client ID metadata document where the authorization server accepts one, or the
  scenario's pre-registered credentials), scope selection, PKCE, ``resource`` and the ``iss`` check; the grant sealed
  in a vault (here in memory); ``GrantAuth`` on the connection, which refreshes the token and notes a refusal; and
  one more sign-in, for the scope the server names, when it refuses.
* ``auth/client-credentials-basic``: ``ClientCredentialsOAuthProvider``, with the client ID and secret the scenario
  gives in ``MCP_CONFORMANCE_CONTEXT``; ``auth/client-credentials-jwt``: ``PrivateKeyJWTOAuthProvider``, signing its
  assertions with the scenario's key (no user signs in there; the orchestrator has no such servers yet).

The authorization code flow needs a user to approve the request; :class:`HeadlessAuthorization` stands in for them.
"""

from __future__ import annotations

import secrets
from typing import Final
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthFlowError
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import BaseModel, ConfigDict, SecretStr

from orchestrator.mcp.links import safe_link
from orchestrator.mcp.oauth.cipher import TokenCipher
from orchestrator.mcp.oauth.flow import ClientIdentity, sign_in
from orchestrator.mcp.oauth.grants import GrantVault
from orchestrator.mcp.oauth.inbox import Callback
from orchestrator.mcp.oauth.locks import LocalLocks
from orchestrator.mcp.oauth.tokens import GrantAuth, TokenRefresher
from orchestrator.mcp.types import OAuthClientConfig, ServerConfig
from orchestrator.memory.grants import StoredClient, StoredGrant

AUTH_SCENARIO_PREFIX: Final = "auth/"

REDIRECT_URI: Final = "http://127.0.0.1/callback"
"""Where the authorization server sends the user back. Nothing listens there: the headless user reads the code from
the redirect itself, so a loopback address (what a native client registers) is all it needs to be."""
CLIENT_METADATA_URL: Final = "https://conformance-test.local/client-metadata.json"
"""The client ID metadata document (SEP-991) the suite's ``auth/basic-cimd`` scenario expects as ``client_id``."""
CLIENT_NAME: Final = "mcp-assistant conformance client"
CONFORMANCE_USER: Final = "conformance"
CLIENT_CREDENTIALS_SCENARIOS: Final = frozenset({"auth/client-credentials-basic", "auth/client-credentials-jwt"})
"""Machine-to-machine scenarios: no user signs in, so the SDK's client credentials providers run there."""

AUTHORIZATION_TIMEOUT_SECONDS: Final = 5.0
"""The bound on the one request to the authorization endpoint, well under the client's connect timeout."""


class MissingCredentials(Exception):
    """The scenario's context lacks what its OAuth client needs; ``fields`` names what is missing."""

    def __init__(self, scenario: str, fields: list[str]) -> None:
        self.scenario = scenario
        self.fields = fields
        super().__init__(f"{scenario} needs {', '.join(fields)} in MCP_CONFORMANCE_CONTEXT")


class AuthContext(BaseModel):
    """What the auth scenarios give in ``MCP_CONFORMANCE_CONTEXT``: pre-registered credentials, a signing key."""

    model_config = ConfigDict(extra="ignore")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    private_key_pem: SecretStr | None = None
    signing_algorithm: str = "ES256"


class InMemoryTokenStorage:
    """The SDK's ``TokenStorage`` for one run: the client's registration and tokens live as long as the process."""

    def __init__(self, client_info: OAuthClientInformationFull | None = None) -> None:
        self._client_info = client_info
        self._tokens: OAuthToken | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self._tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self._tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self._client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self._client_info = client_info


class HeadlessAuthorization:
    """The user's part of the authorization code flow, done without a browser or a user.

    ``redirect`` (the SDK's ``redirect_handler``) requests the authorization URL once, without following the
    redirect that answers it, and keeps the ``code``, ``state`` and ``iss`` that redirect carries to our redirect URI;
    ``callback`` (the SDK's ``callback_handler``) hands them to the SDK, which checks ``state`` and ``iss`` itself.
    The suite's authorization servers approve every request at once, as a user who always consents would.

    Args:
        redirect_uri: the redirect URI the client registered; a redirect anywhere else is refused.
        transport: the HTTP transport for the authorization request (tests pass a mock); the default is the network.
    """

    def __init__(self, redirect_uri: str = REDIRECT_URI, *, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self._redirect_uri = urlsplit(redirect_uri)
        self._transport = transport
        self._result: AuthorizationCodeResult | None = None

    async def redirect(self, authorization_url: str) -> None:
        """Request ``authorization_url`` as the user's browser would, and keep the authorization response.

        Raises:
            OAuthFlowError: the URL is neither https nor http on a loopback address; the authorization server did not
                redirect to our redirect URI with a code (an ``error`` there is quoted).
        """
        self._result = None
        if not safe_link(authorization_url):
            raise OAuthFlowError(
                f"refusing the authorization URL {_without_query(authorization_url)}: "
                "not https, and not http on a loopback address"
            )
        async with httpx2.AsyncClient(
            transport=self._transport, timeout=AUTHORIZATION_TIMEOUT_SECONDS, follow_redirects=False
        ) as client:
            response = await client.get(authorization_url)
        location = response.headers.get("location") if response.is_redirect else None
        if location is None:
            raise OAuthFlowError(f"the authorization endpoint answered {response.status_code}, not a redirect")
        target = urlsplit(urljoin(authorization_url, location))
        if (target.scheme, target.netloc, target.path) != (
            self._redirect_uri.scheme,
            self._redirect_uri.netloc,
            self._redirect_uri.path,
        ):
            raise OAuthFlowError(
                f"the authorization endpoint redirected elsewhere than our redirect URI: {target.path}"
            )
        params = parse_qs(target.query)
        if "error" in params:
            description = _first(params, "error_description")
            raise OAuthFlowError(
                f"the authorization server refused: {_first(params, 'error')}"
                + (f" ({description})" if description else "")
            )
        code = _first(params, "code")
        if code is None:
            raise OAuthFlowError("the authorization server redirected back without a code")
        self._result = AuthorizationCodeResult(code=code, state=_first(params, "state"), iss=_first(params, "iss"))

    async def callback(self) -> AuthorizationCodeResult:
        """The authorization response ``redirect`` kept; each is handed over once.

        Raises:
            OAuthFlowError: ``redirect`` has not kept one.
        """
        result, self._result = self._result, None
        if result is None:
            raise OAuthFlowError("no authorization response to hand over")
        return result


def oauth_for(scenario: str, server_url: str, context: AuthContext) -> httpx2.Auth | None:
    """The SDK OAuth client our layer authenticates with in a machine-to-machine scenario; None outside ``auth/``.

    Raises:
        MissingCredentials: a client credentials scenario whose context lacks the client ID, secret or key.
        ValueError: an authorization code scenario: there the orchestrator's own sign-in runs (``ProductSignIn``).
    """
    if not scenario.startswith(AUTH_SCENARIO_PREFIX):
        return None
    storage = InMemoryTokenStorage()
    # The client credentials providers are not told their authorization server's issuer (the scenarios do not name
    # it), so they follow discovery and the SDK warns that omitting it is deprecated.
    if scenario == "auth/client-credentials-basic":
        if context.client_id is None or context.client_secret is None:
            raise MissingCredentials(scenario, _missing(context, "client_id", "client_secret"))
        return ClientCredentialsOAuthProvider(
            server_url=server_url,
            storage=storage,
            client_id=context.client_id,
            client_secret=context.client_secret.get_secret_value(),
            token_endpoint_auth_method="client_secret_basic",
        )
    if scenario == "auth/client-credentials-jwt":
        if context.client_id is None or context.private_key_pem is None:
            raise MissingCredentials(scenario, _missing(context, "client_id", "private_key_pem"))
        # RFC 7523 section 3: a client authenticating itself is both the issuer and the subject of its assertion.
        assertions = SignedJWTParameters(
            issuer=context.client_id,
            subject=context.client_id,
            signing_key=context.private_key_pem.get_secret_value(),
            signing_algorithm=context.signing_algorithm,
        )
        return PrivateKeyJWTOAuthProvider(
            server_url=server_url,
            storage=storage,
            client_id=context.client_id,
            assertion_provider=assertions.create_assertion_provider(),
        )
    raise ValueError(f"{scenario} is not a client credentials scenario; a user signs in there (ProductSignIn)")


def _missing(context: AuthContext, *fields: str) -> list[str]:
    return [name for name in fields if getattr(context, name) is None]


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class MemoryGrantStore:
    """The orchestrator's ``OAuthGrantStore``, in memory: the conformance client keeps its grant for one run."""

    def __init__(self) -> None:
        self._grants: dict[tuple[str, str], StoredGrant] = {}
        self._clients: dict[str, StoredClient] = {}

    async def get_grant(self, user_id: str, server_id: str) -> StoredGrant | None:
        return self._grants.get((user_id, server_id))

    async def put_grant(self, grant: StoredGrant) -> None:
        self._grants[(grant.user_id, grant.server_id)] = grant

    async def delete_grants(self, user_id: str, server_id: str) -> list[StoredGrant]:
        grant = self._grants.pop((user_id, server_id), None)
        return [grant] if grant is not None else []

    async def granted_servers(self, user_id: str) -> list[str]:
        return sorted(server for user, server in self._grants if user == user_id)

    async def get_client(self, server_id: str) -> StoredClient | None:
        return self._clients.get(server_id)

    async def put_client(self, client: StoredClient) -> None:
        self._clients[client.server_id] = client


class ProductSignIn:
    """The orchestrator's own sign-in for the authorization code scenarios, with the headless user consenting.

    What the orchestrator does for a protected server, step for step: ``sign_in`` (the SDK's provider around one
    request: discovery, registration or the client ID metadata document, PKCE, ``resource``, ``iss``), the grant
    sealed in a ``GrantVault``, and a ``GrantAuth`` on the connection that refreshes the token and notes a refusal
    (a 401, or a 403 asking for more scope), after which the client signs in again, once, as a user would.
    """

    def __init__(self, server: ServerConfig, context: AuthContext) -> None:
        if context.client_id is not None and context.client_secret is not None:
            oauth = OAuthClientConfig(
                client_id=context.client_id,
                client_secret=context.client_secret,
                token_endpoint_auth_method="client_secret_basic",
            )
        else:
            oauth = OAuthClientConfig()
        self.server = server.model_copy(update={"oauth": oauth})
        self.vault = GrantVault(MemoryGrantStore(), TokenCipher([secrets.token_urlsafe(32)]))
        self.refresher = TokenRefresher(self.vault, LocalLocks())
        self._identity = ClientIdentity(redirect_uri=REDIRECT_URI, metadata_url=CLIENT_METADATA_URL)
        self._user = HeadlessAuthorization()

    def auth(self) -> GrantAuth:
        return GrantAuth(self.refresher, CONFORMANCE_USER, self.server.id)

    async def sign_in(self, scope: str | None = None) -> None:
        """Sign in (again), asking for ``scope`` besides what the server names.

        Raises:
            SignInRefused: the flow failed.
        """

        async def present(url: str, state: str) -> None:
            del state
            await self._user.redirect(url)

        async def receive(state: str) -> Callback:
            result = await self._user.callback()
            return Callback(state=result.state or state, code=result.code, iss=result.iss)

        grant = await sign_in(self.server, self._identity, self.vault, present=present, receive=receive, scope=scope)
        await self.vault.save(CONFORMANCE_USER, self.server.id, grant)
