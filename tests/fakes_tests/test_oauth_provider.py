import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from tests.fakes.oauth_provider import FakeOAuthProvider, FakeOAuthServer, GitHubEmail

CLIENT_ID = "web"
SECRET = "client-secret"
CALLBACK = "http://127.0.0.1:9/auth/callback"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOAuthServer]:
    with FakeOAuthServer() as server:
        server.provider.register_client(CLIENT_ID, SECRET, CALLBACK)
        yield server


@pytest.fixture
def provider(server: FakeOAuthServer) -> FakeOAuthProvider:
    server.provider.reset()
    return server.provider


@pytest.fixture
def http(server: FakeOAuthServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def callback_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    return {key: values[0] for key, values in parse_qs(location.query).items()}


def authorize(http: httpx.Client, path: str = "/authorize", **params: str) -> dict[str, str]:
    query = {"client_id": CLIENT_ID, "redirect_uri": CALLBACK, "response_type": "code", "state": "st-1", **params}
    return callback_params(http.get(path, params=query))


def oidc_code(http: httpx.Client, challenge: str, nonce: str = "n-1") -> str:
    params = {"scope": "openid email profile", "nonce": nonce, "code_challenge": challenge}
    return authorize(http, code_challenge_method="S256", **params)["code"]


def exchange(http: httpx.Client, code: str, verifier: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}
    return http.post("/token", data=form, auth=(CLIENT_ID, SECRET))


def verified_claims(server: FakeOAuthServer, id_token: str) -> dict[str, Any]:
    jwks = httpx.get(f"{server.url}/jwks").json()
    key = jwt.PyJWK(jwks["keys"][0]).key
    return jwt.decode(id_token, key, algorithms=["RS256"], audience=CLIENT_ID, issuer=server.url)


def test_the_discovery_document_points_at_this_server(server: FakeOAuthServer, http: httpx.Client) -> None:
    document = http.get("/.well-known/openid-configuration").json()

    assert document["issuer"] == server.url
    assert document["jwks_uri"] == f"{server.url}/jwks"
    assert (document["authorization_endpoint"], document["token_endpoint"], document["userinfo_endpoint"]) == (
        f"{server.url}/authorize",
        f"{server.url}/token",
        f"{server.url}/userinfo",
    )
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]


def test_the_code_flow_with_pkce_and_nonce_yields_an_id_token_signed_by_the_published_key(
    server: FakeOAuthServer, provider: FakeOAuthProvider, http: httpx.Client
) -> None:
    provider.add_user("alice", name="Alice A.")
    provider.auto_login = "alice"
    verifier, challenge = pkce_pair()

    callback = authorize(
        http, scope="openid email profile", nonce="n-42", code_challenge=challenge, code_challenge_method="S256"
    )
    tokens = exchange(http, callback["code"], verifier).json()

    assert (callback["state"], callback["iss"]) == ("st-1", server.url)
    assert provider.authorize_requests[0]["code_challenge"] == challenge
    assert provider.token_requests[0]["code_verifier"] == verifier
    claims = verified_claims(server, tokens["id_token"])
    assert (claims["sub"], claims["nonce"], claims["email"], claims["email_verified"], claims["name"]) == (
        "sub-alice",
        "n-42",
        "alice@example.com",
        True,
        "Alice A.",
    )
    userinfo = http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert userinfo == {"sub": "sub-alice", "email": "alice@example.com", "email_verified": True, "name": "Alice A."}


def test_a_code_is_refused_the_second_time_and_its_token_revoked(
    provider: FakeOAuthProvider, http: httpx.Client
) -> None:
    provider.auto_login = "bob"
    verifier, challenge = pkce_pair()
    code = oidc_code(http, challenge)
    first = exchange(http, code, verifier)

    second = exchange(http, code, verifier)

    assert first.status_code == 200
    assert (second.status_code, second.json()["error"]) == (400, "invalid_grant")
    userinfo = http.get("/userinfo", headers={"Authorization": f"Bearer {first.json()['access_token']}"})
    assert userinfo.status_code == 401


def test_a_wrong_pkce_verifier_is_refused(provider: FakeOAuthProvider, http: httpx.Client) -> None:
    provider.auto_login = "carol"
    _, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()

    response = exchange(http, oidc_code(http, challenge), other_verifier)

    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_tampering_changes_exactly_the_next_id_token(
    server: FakeOAuthServer, provider: FakeOAuthProvider, http: httpx.Client
) -> None:
    provider.auto_login = "dave"
    provider.id_token_overrides = {"aud": "someone-else", "exp": int(time.time()) - 3600, "nonce": None}
    provider.sign_with_other_key = True
    tampered: list[str] = []
    for _ in range(2):
        verifier, challenge = pkce_pair()
        tampered.append(exchange(http, oidc_code(http, challenge), verifier).json()["id_token"])

    with pytest.raises(jwt.InvalidSignatureError):
        verified_claims(server, tampered[0])
    claims = jwt.decode(tampered[0], options={"verify_signature": False})
    assert (claims["aud"], claims["exp"] < time.time(), "nonce" in claims) == ("someone-else", True, False)
    assert verified_claims(server, tampered[1])["nonce"] == "n-1"


def test_the_sign_in_page_signs_in_whoever_is_typed(provider: FakeOAuthProvider, http: httpx.Client) -> None:
    query = {
        "client_id": CLIENT_ID,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "state": "st-9",
        "scope": "openid",
    }
    page = http.get("/authorize", params=query)
    assert page.status_code == 200
    assert 'name="login"' in page.text

    callback = callback_params(http.post("/authorize", data={**query, "login": "erin", "action": "allow"}))

    assert callback["state"] == "st-9"
    assert provider.users["erin"].sub == "sub-erin"


def test_an_unregistered_redirect_uri_gets_an_error_page_rather_than_a_redirect(http: httpx.Client) -> None:
    query = {
        "client_id": CLIENT_ID,
        "redirect_uri": "http://evil.example/cb",
        "response_type": "code",
        "state": "s",
        "scope": "openid",
    }

    response = http.get("/authorize", params=query)

    assert response.status_code == 400
    assert "location" not in response.headers


def test_the_github_flow_gives_a_token_that_lists_every_email(
    server: FakeOAuthServer, provider: FakeOAuthProvider, http: httpx.Client
) -> None:
    provider.add_user(
        "frank",
        github_emails=[
            GitHubEmail("frank@unverified.example", primary=True, verified=False, visibility="public"),
            GitHubEmail("frank@work.example", verified=True),
        ],
    )
    provider.auto_login = "frank"
    callback = authorize(http, "/github/login/oauth/authorize", scope="read:user user:email")
    form = {"client_id": CLIENT_ID, "client_secret": SECRET, "code": callback["code"], "redirect_uri": CALLBACK}

    token = http.post("/github/login/oauth/access_token", data=form, headers={"Accept": "application/json"}).json()

    api = httpx.Client(base_url=server.github_api_url, headers={"Authorization": f"Bearer {token['access_token']}"})
    with api:
        user, emails = api.get("user").json(), api.get("user/emails").json()
    replay = http.post("/github/login/oauth/access_token", data=form)
    assert (token["token_type"], token["scope"]) == ("bearer", "read:user,user:email")
    assert (replay.status_code, parse_qs(replay.text)["error"]) == (200, ["bad_verification_code"])
    assert (user["login"], user["id"], user["email"]) == (
        "frank",
        provider.users["frank"].github_id,
        "frank@unverified.example",
    )
    assert emails == [
        {"email": "frank@unverified.example", "primary": True, "verified": False, "visibility": "public"},
        {"email": "frank@work.example", "primary": False, "verified": True, "visibility": None},
    ]
