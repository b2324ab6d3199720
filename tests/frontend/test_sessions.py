"""Sessions live on the server: cookies carry only an id, logout deletes it, Redis holds them when configured."""

from __future__ import annotations

import uuid
from pathlib import Path

import redis
from flask.testing import FlaskClient

from frontend.app import create_app
from frontend.sessions import COOKIE_NAME, KEY_PREFIX
from tests.fakes.oauth_provider import FakeOAuthServer
from tests.frontend.conftest import csrf_token, frontend_settings, sign_in_locally, signed_in_user_id

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_the_session_cookie_is_http_only_and_same_site_lax(client: FlaskClient) -> None:
    response = client.get("/login")

    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(COOKIE_NAME + "=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development over plain HTTP


def test_in_production_the_session_cookie_is_secure(
    tmp_path: Path, orchestrator_url: str, oauth_server: FakeOAuthServer
) -> None:
    settings = frontend_settings(
        tmp_path, orchestrator_url, oauth_server, environment="production", public_url="https://chat.example"
    )
    client = create_app(settings).test_client()

    assert "; Secure" in client.get("/login").headers["Set-Cookie"]


def test_local_sign_in_needs_the_csrf_token(client: FlaskClient) -> None:
    client.get("/login")

    response = client.post("/login/local", data={"name": "admin", "next": "/"})

    assert response.status_code == 400
    assert signed_in_user_id(client) is None


def test_local_sign_in_refuses_names_outside_its_alphabet(client: FlaskClient) -> None:
    client.post("/login/local", data={"name": "<script>", "next": "/", "csrf_token": csrf_token(client)})

    assert signed_in_user_id(client) is None


def test_local_sign_in_does_not_exist_in_production(
    tmp_path: Path, orchestrator_url: str, oauth_server: FakeOAuthServer
) -> None:
    settings = frontend_settings(
        tmp_path, orchestrator_url, oauth_server, environment="production", public_url="https://chat.example"
    )
    client = create_app(settings).test_client()

    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login/local", data={"name": "admin", "csrf_token": csrf_token(client)})

    assert "Local sign-in" not in page
    assert response.status_code == 404


def test_logout_ends_the_session_on_the_server(client: FlaskClient, other_client: FlaskClient) -> None:
    sign_in_locally(client, "carol")
    stolen = client.get_cookie(COOKIE_NAME)
    assert stolen is not None

    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    other_client.set_cookie(COOKIE_NAME, stolen.value)

    assert signed_in_user_id(client) is None
    assert signed_in_user_id(other_client) is None


def test_logout_needs_the_csrf_token(client: FlaskClient) -> None:
    sign_in_locally(client, "carol")

    response = client.post("/logout")

    assert response.status_code == 400
    assert signed_in_user_id(client) == "local:carol"


def test_with_redis_url_sessions_are_kept_in_redis_and_deleted_at_logout(
    tmp_path: Path, orchestrator_url: str, oauth_server: FakeOAuthServer
) -> None:
    prefix_probe = redis.Redis.from_url(REDIS_URL)  # pyright: ignore[reportUnknownMemberType]
    settings = frontend_settings(tmp_path, orchestrator_url, oauth_server, redis_url=REDIS_URL)
    client = create_app(settings).test_client()
    name = "redis-" + uuid.uuid4().hex[:8]

    sign_in_locally(client, name)
    cookie = client.get_cookie(COOKIE_NAME)
    assert cookie is not None
    key = KEY_PREFIX + cookie.value
    stored_while_signed_in = prefix_probe.exists(key)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})

    assert stored_while_signed_in == 1
    assert prefix_probe.exists(key) == 0
    assert signed_in_user_id(client) is None
