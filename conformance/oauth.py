"""OAuth 2.1 for the auth scenarios: which of the MCP SDK's OAuth clients our layer gets, and a headless user.

Every ``auth/*`` scenario's server answers 401 until the client authorizes. The client hands
:class:`~orchestrator.mcp.connection.ServerConnection` one of the SDK's ``httpx2.Auth`` providers, which does all of
OAuth itself (protected resource and authorization server metadata discovery, dynamic client registration or a
client ID metadata document, PKCE, the ``resource`` parameter, scope selection and step-up, ``iss`` checks, token
refresh):

* ``auth/client-credentials-basic``: ``ClientCredentialsOAuthProvider``, with the client ID and secret the scenario
  gives in ``MCP_CONFORMANCE_CONTEXT``;
* ``auth/client-credentials-jwt``: ``PrivateKeyJWTOAuthProvider``, signing its assertions with the scenario's key;
* every other one: ``OAuthClientProvider``'s authorization code flow, with the scenario's client ID and secret as a
  pre-registered client when it gives them, and otherwise registering dynamically or, where the authorization server
  accepts them, using the suite's client ID metadata document URL.

The authorization code flow needs a user to approve the request; :class:`HeadlessAuthorization` stands in for them.
"""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, OAuthFlowError
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl, BaseModel, ConfigDict, SecretStr

AUTH_SCENARIO_PREFIX: Final = "auth/"

REDIRECT_URI: Final = "http://127.0.0.1/callback"
"""Where the authorization server sends the user back. Nothing listens there: the headless user reads the code from
the redirect itself, so a loopback address (what a native client registers) is all it needs to be."""
CLIENT_METADATA_URL: Final = "https://conformance-test.local/client-metadata.json"
"""The client ID metadata document (SEP-991) the suite's ``auth/basic-cimd`` scenario expects as ``client_id``."""
CLIENT_NAME: Final = "mcp-assistant conformance client"

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


def authorization_url_allowed(url: str) -> bool:
    """Whether the client may send the user to ``url``: https, or plain http only on a loopback address.

    The suite's authorization servers listen on ``http://localhost``; anywhere else, the request (which carries the
    PKCE challenge and state) and the redirect that answers it (which carries the code) must be protected.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        if not authorization_url_allowed(authorization_url):
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
    """The SDK OAuth client our layer authenticates with in ``scenario``; None outside the auth scenarios.

    Raises:
        MissingCredentials: a client credentials scenario whose context lacks the client ID, secret or key.
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
    if context.client_id is not None and context.client_secret is not None:
        # A pre-registered client. The context says nothing of how it authenticates at the token endpoint, so it
        # takes the registration default, client_secret_basic (RFC 7591 section 2).
        storage = InMemoryTokenStorage(
            OAuthClientInformationFull(
                client_id=context.client_id,
                client_secret=context.client_secret.get_secret_value(),
                redirect_uris=[AnyUrl(REDIRECT_URI)],
                token_endpoint_auth_method="client_secret_basic",
            )
        )
    user = HeadlessAuthorization()
    return OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            client_name=CLIENT_NAME,
            redirect_uris=[AnyUrl(REDIRECT_URI)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=user.redirect,
        callback_handler=user.callback,
        client_metadata_url=CLIENT_METADATA_URL,
    )


def _missing(context: AuthContext, *fields: str) -> list[str]:
    return [name for name in fields if getattr(context, name) is None]


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
