"""The browser reaches the orchestrator's API through the frontend (or nginx asking it): a token it never sees."""

from __future__ import annotations

import json
from pathlib import Path

from flask.testing import FlaskClient

from frontend.app import create_app
from frontend.views.api_proxy import forwarded_chain
from frontend.views.auth import API_AUTHORIZATION_HEADER
from tests.fakes.oauth_provider import FakeOAuthServer
from tests.frontend.conftest import JWT_SECRET, auth_request, csrf_token, frontend_settings, sign_in_locally
from tests.support.process import orchestrator_process


def test_api_token_check_refuses_a_browser_that_is_not_signed_in(client: FlaskClient) -> None:
    response = auth_request(client)

    assert response.status_code == 401
    assert response.get_json() == {"detail": "sign in first", "code": "unauthenticated"}


def test_api_token_check_requires_the_csrf_token_for_state_changing_methods(client: FlaskClient) -> None:
    sign_in_locally(client)
    token = csrf_token(client, "/")

    without = auth_request(client, {"X-Original-Method": "POST"})
    forged = auth_request(client, {"X-Original-Method": "DELETE", "X-CSRF-Token": "forged"})
    valid = auth_request(client, {"X-Original-Method": "POST", "X-CSRF-Token": token})
    read = auth_request(client, {"X-Original-Method": "GET"})

    assert (without.status_code, forged.status_code) == (403, 403)
    assert without.get_json()["code"] == "forbidden"
    assert (valid.status_code, read.status_code) == (204, 204)
    assert valid.headers[API_AUTHORIZATION_HEADER].startswith("Bearer ")


def test_the_token_check_answers_only_nginx_never_a_page_script(client: FlaskClient) -> None:
    sign_in_locally(client)

    response = client.get("/auth/api-token", headers={"X-Original-Method": "GET"})

    assert response.status_code == 404
    assert API_AUTHORIZATION_HEADER not in response.headers


def test_api_clients_without_a_session_may_bring_their_own_token(client: FlaskClient) -> None:
    response = auth_request(client, {"Authorization": "Bearer their-own"})

    assert response.status_code == 204
    assert response.headers[API_AUTHORIZATION_HEADER] == "Bearer their-own"


def test_the_proxy_refuses_anonymous_api_calls_with_the_api_error_shape(client: FlaskClient) -> None:
    response = client.get("/api/conversations")

    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthenticated"


def test_the_proxy_refuses_a_post_without_the_csrf_token(client: FlaskClient) -> None:
    sign_in_locally(client)

    response = client.post("/api/conversations", json={})

    assert response.status_code == 403


def test_a_signed_in_browser_runs_a_streamed_turn_through_the_proxy(client: FlaskClient) -> None:
    sign_in_locally(client, "dora")
    headers = {"X-CSRF-Token": csrf_token(client, "/")}
    created = client.post("/api/conversations", json={"title": "through the proxy"}, headers=headers)
    conversation = created.get_json()["id"]

    stream = client.post(
        f"/api/conversations/{conversation}/messages",
        json={"content": "hello proxy"},
        headers={**headers, "Accept": "text/event-stream"},
    )
    events = [
        json.loads(line.removeprefix("data: "))
        for line in stream.get_data(as_text=True).splitlines()
        if line.startswith("data: ")
    ]

    assert created.status_code == 201
    assert stream.status_code == 200
    assert stream.mimetype == "text/event-stream"
    assert events[-1]["status"] == "complete"
    assert "hello proxy" in events[-1]["content"]


def test_one_user_cannot_open_another_users_conversation(client: FlaskClient, other_client: FlaskClient) -> None:
    sign_in_locally(client, "erin")
    created = client.post("/api/conversations", json={}, headers={"X-CSRF-Token": csrf_token(client, "/")})
    conversation = created.get_json()["id"]
    sign_in_locally(other_client, "frank")

    api = other_client.get(f"/api/conversations/{conversation}")
    page = other_client.get(f"/c/{conversation}")
    listed = other_client.get("/api/conversations").get_json()

    assert api.status_code == 404
    assert page.status_code == 404
    assert conversation not in [item["id"] for item in listed]
    assert client.get(f"/c/{conversation}").status_code == 200


def test_the_proxy_appends_its_caller_to_the_forwarded_addresses() -> None:
    assert forwarded_chain("203.0.113.7", "10.0.3.4") == "203.0.113.7, 10.0.3.4"
    assert forwarded_chain("198.51.100.1 , 203.0.113.7,", "10.0.3.4") == "198.51.100.1, 203.0.113.7, 10.0.3.4"
    assert forwarded_chain(None, "10.0.3.4") == "10.0.3.4"
    assert forwarded_chain(None, None) is None


async def test_behind_an_ingress_each_client_spends_the_rate_limit_of_its_own_address(
    tmp_path: Path, oauth_server: FakeOAuthServer
) -> None:
    env = {
        "JWT_SECRET_KEY": JWT_SECRET,
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_PER_MINUTE": "2",
        "DATA_DIR": str(tmp_path / "data"),
        "MCP_BUILTIN_SERVERS": "false",
        "MEMORY_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    async with orchestrator_process(env, tmp_path) as (_, orchestrator_url):
        client = create_app(frontend_settings(tmp_path, orchestrator_url, oauth_server)).test_client()

        def call(client_address: str) -> int:
            # As an ingress controller on this machine (a trusted proxy) forwards the request of client_address.
            headers = {"Authorization": "Bearer not-a-valid-token", "X-Forwarded-For": client_address}
            return client.get("/api/conversations", headers=headers).status_code

        first = [call("203.0.113.7") for _ in range(3)]
        other = call("198.51.100.9")

    assert first == [401, 401, 429]
    assert other == 401
