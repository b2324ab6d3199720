"""Signing in with Google, GitHub and a generic OpenID provider, and everything that must make it fail."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from flask.testing import FlaskClient

from tests.fakes.oauth_provider import FakeOAuthProvider, GitHubEmail
from tests.frontend.conftest import csrf_token, oauth_sign_in, session_cookie, signed_in_user_id


def test_google_sign_in_identifies_the_user_by_provider_and_subject(
    client: FlaskClient, oauth: FakeOAuthProvider
) -> None:
    response = oauth_sign_in(client, "google", "/c/some-conversation")

    assert response.status_code == 302
    assert response.headers["Location"] == "/c/some-conversation"
    assert signed_in_user_id(client) == "google:sub-alice"


def test_google_sign_in_sends_state_nonce_and_a_pkce_challenge(client: FlaskClient, oauth: FakeOAuthProvider) -> None:
    oauth_sign_in(client, "google")

    sent = oauth.authorize_requests[-1]
    assert sent["state"]
    assert sent["nonce"]
    assert sent["code_challenge_method"] == "S256"
    assert "code_verifier" in oauth.token_requests[-1]


def test_signing_in_gives_the_browser_a_new_session_id(client: FlaskClient, oauth: FakeOAuthProvider) -> None:
    start = client.get("/login/google")
    before = session_cookie(client)
    approved = httpx.get(start.headers["Location"], follow_redirects=False)
    callback = urlsplit(approved.headers["Location"])
    client.get(callback.path, query_string=callback.query)

    assert before is not None
    assert session_cookie(client) not in (None, before)
    assert signed_in_user_id(client) == "google:sub-alice"


def test_generic_openid_provider_signs_users_in_under_its_own_prefix(
    client: FlaskClient, oauth: FakeOAuthProvider
) -> None:
    oauth_sign_in(client, "oidc")

    assert signed_in_user_id(client) == "oidc:sub-alice"


def test_github_sign_in_needs_a_verified_primary_email(client: FlaskClient, oauth: FakeOAuthProvider) -> None:
    oauth.add_user("alice", github_id=4242)

    oauth_sign_in(client, "github")

    assert signed_in_user_id(client) == "github:4242"


def test_github_account_whose_primary_email_is_unverified_is_refused(
    client: FlaskClient, oauth: FakeOAuthProvider
) -> None:
    oauth.add_user(
        "mallory",
        github_emails=[
            GitHubEmail("victim@example.com", primary=True, verified=False),
            GitHubEmail("mallory@example.com", primary=False, verified=True),
        ],
    )
    oauth.auto_login = "mallory"

    response = oauth_sign_in(client, "github")

    assert response.headers["Location"] == "/login"
    assert signed_in_user_id(client) is None
    assert "verified primary e-mail" in client.get("/login").get_data(as_text=True)


@pytest.mark.parametrize(
    "tampering",
    [
        pytest.param({"aud": "someone-else"}, id="wrong-audience"),
        pytest.param({"nonce": "not-the-one-we-sent"}, id="wrong-nonce"),
        pytest.param({"nonce": None}, id="missing-nonce"),
        pytest.param({"iss": "http://evil.example"}, id="wrong-issuer"),
        pytest.param({"exp": int(time.time()) - 3600}, id="expired"),
    ],
)
def test_an_id_token_that_fails_validation_signs_no_one_in(
    client: FlaskClient, oauth: FakeOAuthProvider, tampering: dict[str, object]
) -> None:
    oauth.id_token_overrides = dict(tampering)

    response = oauth_sign_in(client, "google")

    assert response.headers["Location"] == "/login"
    assert signed_in_user_id(client) is None


def test_an_id_token_signed_with_another_key_signs_no_one_in(client: FlaskClient, oauth: FakeOAuthProvider) -> None:
    oauth.sign_with_other_key = True

    oauth_sign_in(client, "google")

    assert signed_in_user_id(client) is None


def _approved_callback(client: FlaskClient, provider: str = "google") -> tuple[str, dict[str, str]]:
    start = client.get("/login/" + provider)
    approved = httpx.get(start.headers["Location"], follow_redirects=False)
    callback = urlsplit(approved.headers["Location"])
    return callback.path, {key: values[0] for key, values in parse_qs(callback.query).items()}


def test_a_callback_without_state_is_refused(client: FlaskClient, oauth: FakeOAuthProvider) -> None:
    path, query = _approved_callback(client)
    del query["state"]

    client.get(path, query_string=query)

    assert signed_in_user_id(client) is None


def test_a_callback_with_a_forged_state_is_refused(client: FlaskClient, oauth: FakeOAuthProvider) -> None:
    path, query = _approved_callback(client)
    query["state"] = "forged-" + query["state"]

    client.get(path, query_string=query)

    assert signed_in_user_id(client) is None


def test_a_replayed_callback_is_refused(client: FlaskClient, oauth: FakeOAuthProvider) -> None:
    path, query = _approved_callback(client)
    client.get(path, query_string=query)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})

    client.get(path, query_string=query)

    assert signed_in_user_id(client) is None


def test_state_is_bound_to_the_browser_that_started_sign_in(
    client: FlaskClient, oauth: FakeOAuthProvider, other_client: FlaskClient
) -> None:
    """An attacker's own callback URL (their code and state) does not sign a victim's browser in."""
    path, query = _approved_callback(other_client)

    client.get(path, query_string=query)

    assert signed_in_user_id(client) is None


@pytest.mark.parametrize(
    "next_path",
    ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", "\t//evil.example"],
)
def test_sign_in_never_sends_the_user_to_another_origin(
    client: FlaskClient, oauth: FakeOAuthProvider, next_path: str
) -> None:
    response = oauth_sign_in(client, "google", next_path)

    assert response.headers["Location"] == "/"


def test_an_unknown_provider_is_not_found(client: FlaskClient) -> None:
    assert client.get("/login/myspace").status_code == 404


def test_a_provider_error_on_the_callback_signs_no_one_in(client: FlaskClient, oauth: FakeOAuthProvider) -> None:
    client.get("/login/google")

    response = client.get("/auth/google/callback", query_string={"error": "access_denied", "state": "x"})

    assert response.headers["Location"] == "/login"
    assert signed_in_user_id(client) is None
