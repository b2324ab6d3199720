"""The frontend under test: its real app (Flask's test client), a real orchestrator process and the fake provider."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from frontend.app import create_app
from frontend.sessions import COOKIE_NAME
from frontend.settings import FrontendSettings, load_settings
from frontend.views.auth import AUTH_REQUEST_HEADER
from tests.fakes.oauth_provider import FakeOAuthProvider, FakeOAuthServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.orchestrator.api.conftest import stdio_test_server
from tests.support.process import orchestrator_process

JWT_SECRET = "frontend-tests-jwt-secret-0123456789abcdefghij"
FRONTEND_SECRET = "frontend-tests-session-secret-0123456789abcdef"
ADMIN = "local:admin"
CLIENTS = {"google": "google-client", "github": "github-client", "oidc": "oidc-client"}
CLIENT_SECRET = "client-secret-for-tests"
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@pytest.fixture(scope="session")
def oauth_server() -> Iterator[FakeOAuthServer]:
    with FakeOAuthServer() as server:
        for provider, client_id in CLIENTS.items():
            server.provider.register_client(client_id, CLIENT_SECRET, f"http://localhost/auth/{provider}/callback")
        yield server


@pytest.fixture
def oauth(oauth_server: FakeOAuthServer) -> FakeOAuthProvider:
    """The fake provider with its knobs reset; it signs in ``alice`` without showing its page."""
    provider = oauth_server.provider
    provider.reset()
    provider.auto_login = "alice"
    return provider


@pytest.fixture(scope="session")
async def orchestrator_url(
    tmp_path_factory: pytest.TempPathFactory, openai_server: FakeOpenAIServer
) -> AsyncGenerator[str]:
    root = tmp_path_factory.mktemp("orchestrator")
    servers = root / "servers.json"
    servers.write_text(json.dumps({"mcpServers": {"test": stdio_test_server()}}))
    env = {
        "OPENAI_API_KEY": openai_server.api_key,
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_MODEL": "fake-gpt",
        "DATA_DIR": str(root / "data"),
        "MCP_BUILTIN_SERVERS": "false",
        "MCP_CONFIG": str(servers),
        "JWT_SECRET_KEY": JWT_SECRET,
        "ADMIN_USERS": ADMIN,
        "LOG_LEVEL": "WARNING",
    }
    async with orchestrator_process(env, root) as (_, url):
        yield url


def frontend_settings(
    tmp_path: Path, orchestrator_url: str, oauth_server: FakeOAuthServer, **overrides: Any
) -> FrontendSettings:
    values: dict[str, Any] = {
        "environment": "development",
        "data_dir": tmp_path / "frontend-data",
        "orchestrator_url": orchestrator_url,
        "jwt_secret_key": JWT_SECRET,
        "frontend_secret_key": FRONTEND_SECRET,
        "google_client_id": CLIENTS["google"],
        "google_client_secret": CLIENT_SECRET,
        "google_discovery_url": oauth_server.discovery_url,
        "github_client_id": CLIENTS["github"],
        "github_client_secret": CLIENT_SECRET,
        "github_authorize_url": oauth_server.github_url + "/login/oauth/authorize",
        "github_token_url": oauth_server.github_url + "/login/oauth/access_token",
        "github_api_url": oauth_server.github_api_url,
        "oidc_client_id": CLIENTS["oidc"],
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_discovery_url": oauth_server.discovery_url,
        "oidc_label": "Company SSO",
    }
    values.update(overrides)
    return load_settings(_env_file=None, **values)


@pytest.fixture
def settings(tmp_path: Path, orchestrator_url: str, oauth_server: FakeOAuthServer) -> FrontendSettings:
    return frontend_settings(tmp_path, orchestrator_url, oauth_server)


@pytest.fixture
def app(settings: FrontendSettings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def other_client(app: Flask) -> FlaskClient:
    """A second browser on the same frontend."""
    return app.test_client()


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of ``client``'s session, as a page gives it to its scripts and forms."""
    page = client.get(path).get_data(as_text=True)
    match = _CSRF.search(page)
    assert match is not None, f"no CSRF token on {path}"
    return match.group(1)


def sign_in_locally(client: FlaskClient, name: str = "admin") -> None:
    response = client.post("/login/local", data={"name": name, "next": "/", "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/"


def oauth_sign_in(client: FlaskClient, provider: str, next_path: str = "/") -> TestResponse:
    """Start sign-in with ``provider``, let the fake provider approve it, and return the callback's answer."""
    start = client.get("/login/" + provider, query_string={"next": next_path})
    assert start.status_code == 302, start.get_data(as_text=True)
    approved = httpx.get(start.headers["Location"], follow_redirects=False)
    assert approved.status_code == 302, approved.text
    callback = urlsplit(approved.headers["Location"])
    return client.get(callback.path, query_string=callback.query)


def signed_in_user_id(client: FlaskClient) -> str | None:
    """Who the session is signed in as, read from the token the frontend would send the orchestrator."""
    response = auth_request(client)
    if response.status_code == 401:
        return None
    assert response.status_code == 204, response.get_data(as_text=True)
    scheme, _, token = response.headers["X-Api-Authorization"].partition(" ")
    assert scheme == "Bearer"
    claims: dict[str, Any] = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    return str(claims["sub"])


def session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(COOKIE_NAME)
    return cookie.value if cookie is not None else None


def auth_request(client: FlaskClient, headers: dict[str, str] | None = None) -> TestResponse:
    """The request nginx's ``auth_request`` makes to the frontend for an ``/api/`` call."""
    return client.get("/auth/api-token", headers={AUTH_REQUEST_HEADER: "1", **(headers or {})})
