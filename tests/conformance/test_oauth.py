"""The conformance client's OAuth choices (``conformance/oauth.py``), without the suite.

The suite's auth scenarios show the flows work end to end (``test_client_scenarios.py``); these pin what they cannot:
which SDK client each scenario gets, and that the headless user fetches nothing it should not and follows no redirect.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider, OAuthFlowError
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider, PrivateKeyJWTOAuthProvider
from mcp.shared.exceptions import MCPDeprecationWarning
from pydantic import SecretStr

from conformance.oauth import (
    REDIRECT_URI,
    AuthContext,
    HeadlessAuthorization,
    MissingCredentials,
    ProductSignIn,
    oauth_for,
)
from orchestrator.mcp.links import safe_link
from orchestrator.mcp.types import ServerConfig

SERVER_URL = "http://localhost:3001/mcp"
AUTHORIZE = "http://localhost:3002/authorize?client_id=c&state=s"


class AuthorizationServer:
    """Answers every request with one canned response and remembers the requests it got."""

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response
        self.requests: list[httpx2.Request] = []
        self.transport = httpx2.MockTransport(self._handle)

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.response


def redirect_to(location: str) -> httpx2.Response:
    return httpx2.Response(302, headers={"Location": location})


def back_to_us(**params: str) -> str:
    return f"{REDIRECT_URI}?{urlencode(params)}"


@pytest.mark.parametrize(
    "url",
    [
        "https://auth.example.com/authorize",
        "http://localhost:8080/authorize",
        "http://127.0.0.1/authorize",
        "http://127.8.9.10:9000/authorize",
        "http://[::1]:9000/authorize",
    ],
)
def test_authorization_urls_over_https_or_on_loopback_http_are_allowed(url: str) -> None:
    assert safe_link(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://auth.example.com/authorize",
        "http://10.0.0.1/authorize",
        "http://localhost.example.com/authorize",
        "http://[::ffff:8.8.8.8]/authorize",
        "ftp://localhost/authorize",
        "javascript:alert(1)",
        "https:///authorize",
    ],
)
def test_other_authorization_urls_are_refused(url: str) -> None:
    assert not safe_link(url)


async def test_the_authorization_response_is_read_from_the_redirect_without_following_it() -> None:
    server = AuthorizationServer(redirect_to(back_to_us(code="the-code", state="s", iss="http://localhost:3002")))
    user = HeadlessAuthorization(transport=server.transport)

    await user.redirect(AUTHORIZE)
    result = await user.callback()

    assert (result.code, result.state, result.iss) == ("the-code", "s", "http://localhost:3002")
    assert [str(request.url) for request in server.requests] == [AUTHORIZE]


async def test_a_refused_authorization_url_is_never_requested() -> None:
    server = AuthorizationServer(redirect_to(back_to_us(code="the-code", state="s")))
    user = HeadlessAuthorization(transport=server.transport)

    with pytest.raises(OAuthFlowError):
        await user.redirect("http://auth.example.com/authorize?client_id=c")

    assert server.requests == []


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx2.Response(200, text="<form>log in</form>"), id="a login page"),
        pytest.param(redirect_to(back_to_us(error="access_denied", state="s")), id="an error"),
        pytest.param(redirect_to(back_to_us(state="s")), id="no code"),
        pytest.param(redirect_to("https://elsewhere.example.com/callback?code=c&state=s"), id="another redirect URI"),
    ],
)
async def test_an_authorization_response_without_a_code_for_us_fails_the_flow(response: httpx2.Response) -> None:
    user = HeadlessAuthorization(transport=AuthorizationServer(response).transport)

    with pytest.raises(OAuthFlowError):
        await user.redirect(AUTHORIZE)
    with pytest.raises(OAuthFlowError):
        await user.callback()


async def test_each_authorization_response_is_handed_over_once() -> None:
    server = AuthorizationServer(redirect_to(back_to_us(code="the-code", state="s")))
    user = HeadlessAuthorization(transport=server.transport)
    await user.redirect(AUTHORIZE)
    await user.callback()

    with pytest.raises(OAuthFlowError):
        await user.callback()


def test_scenarios_outside_auth_get_no_oauth_client() -> None:
    assert oauth_for("tools_call", SERVER_URL, AuthContext()) is None


def test_authorization_code_scenarios_get_no_sdk_client_the_orchestrators_sign_in_runs_there() -> None:
    with pytest.raises(ValueError, match="ProductSignIn"):
        oauth_for("auth/metadata-default", SERVER_URL, AuthContext())


def test_credentials_in_the_context_make_a_pre_registered_client() -> None:
    context = AuthContext(client_id="pre", client_secret=SecretStr("secret"))
    server = ServerConfig(id="conformance", transport="streamable-http", url=SERVER_URL)

    oauth = ProductSignIn(server, context).server.oauth

    assert oauth is not None
    assert oauth.client_id == "pre"
    assert oauth.client_secret is not None
    assert oauth.client_secret.get_secret_value() == "secret"
    assert oauth.token_endpoint_auth_method == "client_secret_basic"


def test_without_credentials_the_client_registers_itself() -> None:
    server = ServerConfig(id="conformance", transport="streamable-http", url=SERVER_URL)

    oauth = ProductSignIn(server, AuthContext()).server.oauth

    assert oauth is not None
    assert oauth.client_id is None


@pytest.mark.parametrize(
    ("scenario", "provider"),
    [
        ("auth/client-credentials-basic", ClientCredentialsOAuthProvider),
        ("auth/client-credentials-jwt", PrivateKeyJWTOAuthProvider),
    ],
)
def test_the_client_credentials_scenarios_get_the_client_credentials_providers(
    scenario: str, provider: type[OAuthClientProvider]
) -> None:
    context = AuthContext(client_id="cc", client_secret=SecretStr("secret"), private_key_pem=SecretStr("pem"))

    with pytest.warns(MCPDeprecationWarning):  # the scenarios do not name the authorization server's issuer
        auth = oauth_for(scenario, SERVER_URL, context)

    assert type(auth) is provider


@pytest.mark.parametrize("scenario", ["auth/client-credentials-basic", "auth/client-credentials-jwt"])
def test_a_client_credentials_scenario_without_credentials_says_what_is_missing(scenario: str) -> None:
    with pytest.raises(MissingCredentials) as raised:
        oauth_for(scenario, SERVER_URL, AuthContext())

    assert "client_id" in raised.value.fields
