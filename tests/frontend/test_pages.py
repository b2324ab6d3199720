"""The pages themselves: who sees what, escaping, security headers, health."""

from __future__ import annotations

import html
import re
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient

from frontend.app import create_app
from frontend.security import CONTENT_SECURITY_POLICY
from tests.fakes.oauth_provider import FakeOAuthServer
from tests.frontend.conftest import csrf_token, frontend_settings, sign_in_locally

XSS_TITLE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def test_pages_ask_anonymous_visitors_to_sign_in_and_remember_where_they_were_going(client: FlaskClient) -> None:
    for path in ("/", "/servers", "/memories", "/api-keys", "/c/abc?x=1", "/servers/alpha/connect"):
        response = client.get(path)
        location = urlsplit(response.headers["Location"])

        assert response.status_code == 302
        assert location.path == "/login"
        assert parse_qs(location.query)["next"] == [path]


def test_the_login_page_offers_every_configured_provider(client: FlaskClient) -> None:
    page = client.get("/login?next=/c/1").get_data(as_text=True)

    assert "/login/google?next=/c/1" in html.unescape(page)
    assert "Continue with GitHub" in page
    assert "Continue with Company SSO" in page
    assert "Local sign-in" in page


def test_every_page_sends_a_strict_content_security_policy(client: FlaskClient) -> None:
    response = client.get("/login")

    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_conversation_titles_are_escaped_in_the_page(client: FlaskClient) -> None:
    sign_in_locally(client, "gina")
    client.post("/api/conversations", json={"title": XSS_TITLE}, headers={"X-CSRF-Token": csrf_token(client, "/")})

    page = client.get("/").get_data(as_text=True)

    assert XSS_TITLE not in page
    assert "<script>alert(2)" not in page
    assert html.escape(XSS_TITLE, quote=False) in page or "\\u003cscript\\u003e" in page


def test_the_servers_page_shows_admin_controls_only_to_admins(client: FlaskClient, other_client: FlaskClient) -> None:
    sign_in_locally(client, "admin")
    sign_in_locally(other_client, "henry")

    as_admin = client.get("/servers").get_data(as_text=True)
    as_user = other_client.get("/servers").get_data(as_text=True)

    assert 'action="/servers"' in as_admin
    assert 'action="/servers"' not in as_user


def test_a_refused_server_registration_is_shown_with_the_form_kept(client: FlaskClient) -> None:
    sign_in_locally(client, "admin")

    response = client.post(
        "/servers",
        data={
            "id": "Not Valid!",
            "url": "http://127.0.0.1:9/mcp",
            "transport": "sse",
            "csrf_token": csrf_token(client, "/"),
        },
    )
    page = response.get_data(as_text=True)
    not_a_number = client.post(
        "/servers",
        data={
            "id": "fine",
            "url": "http://127.0.0.1:9/mcp",
            "transport": "sse",
            "max_concurrent_calls": "lots",
            "csrf_token": csrf_token(client, "/"),
        },
    )

    assert response.status_code == 422
    assert "http://127.0.0.1:9/mcp" in page
    assert not_a_number.status_code == 422
    assert "Calls at once must be a whole number." in not_a_number.get_data(as_text=True)
    assert 'value="lots"' in not_a_number.get_data(as_text=True)


def test_a_non_admin_cannot_register_servers(other_client: FlaskClient) -> None:
    sign_in_locally(other_client, "henry")

    response = other_client.post(
        "/servers",
        data={
            "id": "sneaky",
            "url": "http://127.0.0.1:9/mcp",
            "transport": "sse",
            "csrf_token": csrf_token(other_client, "/"),
        },
    )

    assert response.status_code == 403


def test_health_and_readiness(client: FlaskClient) -> None:
    live = client.get("/health")
    ready = client.get("/ready")

    assert live.get_json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"sessions": "ok", "orchestrator": "ok"}


def test_readiness_fails_when_the_orchestrator_is_down(
    tmp_path: Path, orchestrator_url: str, oauth_server: FakeOAuthServer
) -> None:
    settings = frontend_settings(tmp_path, "http://127.0.0.1:9", oauth_server)
    client = create_app(settings).test_client()

    response = client.get("/ready")

    assert response.status_code == 503
    assert response.get_json()["checks"]["orchestrator"] != "ok"


def test_pages_explain_when_the_orchestrator_is_down(
    tmp_path: Path, orchestrator_url: str, oauth_server: FakeOAuthServer
) -> None:
    client = create_app(frontend_settings(tmp_path, "http://127.0.0.1:9", oauth_server)).test_client()
    sign_in_locally(client)

    response = client.get("/")

    assert response.status_code == 503
    assert "not answering" in response.get_data(as_text=True)


def test_an_admin_adds_and_removes_an_http_server_from_the_servers_page(client: FlaskClient) -> None:
    sign_in_locally(client, "admin")
    token = csrf_token(client, "/")
    server_id = "later" + uuid.uuid4().hex[:8]

    added = client.post(
        "/servers",
        data={
            "id": server_id,
            "url": "http://127.0.0.1:9/mcp",
            "transport": "streamable-http",
            "max_concurrent_calls": "2",
            "csrf_token": token,
        },
    )
    listed = client.get("/servers").get_data(as_text=True)
    removed = client.post(f"/servers/{server_id}/delete", data={"csrf_token": token})
    after = client.get("/servers").get_data(as_text=True)

    assert (added.status_code, added.headers["Location"]) == (302, "/servers")
    assert server_id in listed
    assert (removed.status_code, removed.headers["Location"]) == (302, "/servers")
    assert server_id not in after


def test_a_user_adds_searches_and_deletes_memories_and_never_sees_anothers(
    client: FlaskClient, other_client: FlaskClient
) -> None:
    owner, stranger = "mem" + uuid.uuid4().hex[:8], "mem" + uuid.uuid4().hex[:8]
    sign_in_locally(client, owner)
    sign_in_locally(other_client, stranger)
    token = csrf_token(client, "/")

    added = client.post("/memories", data={"text": "I cycle to work every day", "csrf_token": token})
    listed = client.get("/memories").get_data(as_text=True)
    searched = client.get("/memories?q=how do I commute").get_data(as_text=True)
    strangers = other_client.get("/memories").get_data(as_text=True)
    memory_id = listed.split('data-memory-id="', 1)[1].split('"', 1)[0]
    deleted = client.post(f"/memories/{memory_id}/delete", data={"csrf_token": token})
    after = client.get("/memories").get_data(as_text=True)

    assert (added.status_code, added.headers["Location"]) == (302, "/memories")
    assert "I cycle to work every day" in listed
    assert "I cycle to work every day" in searched
    assert "I cycle to work every day" not in strangers
    assert (deleted.status_code, deleted.headers["Location"]) == (302, "/memories")
    assert "I cycle to work every day" not in after


def test_a_user_creates_sees_once_and_revokes_an_api_key_and_never_sees_anothers(
    client: FlaskClient, other_client: FlaskClient
) -> None:
    owner, stranger = "key" + uuid.uuid4().hex[:8], "key" + uuid.uuid4().hex[:8]
    sign_in_locally(client, owner)
    sign_in_locally(other_client, stranger)
    token = csrf_token(client, "/")

    created = client.post("/api-keys", data={"name": "my laptop", "csrf_token": token})
    created_page = created.get_data(as_text=True)
    secret = created_page.split('id="new-api-key"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    listed = client.get("/api-keys").get_data(as_text=True)
    strangers = other_client.get("/api-keys").get_data(as_text=True)
    key_id = listed.split('data-api-key-id="', 1)[1].split('"', 1)[0]
    revoked = client.post(f"/api-keys/{key_id}/revoke", data={"csrf_token": token})
    after = client.get("/api-keys").get_data(as_text=True)

    assert created.status_code == 200
    assert secret.startswith("mcpa_")
    assert "my laptop" in listed
    assert secret not in listed
    assert "my laptop" not in strangers
    assert (revoked.status_code, revoked.headers["Location"]) == (302, "/api-keys")
    assert "my laptop" not in after


def test_creating_an_api_key_needs_the_csrf_token(client: FlaskClient) -> None:
    sign_in_locally(client, "key" + uuid.uuid4().hex[:8])

    refused = client.post("/api-keys", data={"name": "no token"})

    assert refused.status_code == 400
    assert "no token" not in client.get("/api-keys").get_data(as_text=True)


def _policy_badges(page: str) -> dict[str, str]:
    """Each listed tool's badge: what the viewer's calls of it do."""
    found = re.findall(
        r'<code class="tool-list-name" title="([^"]+)">[^<]*</code>\s*<span class="policy-badge policy-(\w+)"', page
    )
    return dict(found)


def _servers_page_with_tools(client: FlaskClient) -> str:
    deadline = time.monotonic() + 30
    while True:
        page = client.get("/servers").get_data(as_text=True)
        if "test__echo" in _policy_badges(page) or time.monotonic() > deadline:
            return page
        time.sleep(0.1)


def test_an_admin_sets_tool_policies_on_the_servers_page_and_users_see_what_their_calls_do(
    client: FlaskClient, other_client: FlaskClient
) -> None:
    sign_in_locally(client, "admin")
    sign_in_locally(other_client, "henry")
    token = csrf_token(client, "/servers")
    before = _policy_badges(_servers_page_with_tools(other_client))

    denied = client.post("/servers/test/policy", data={"tool": "echo", "policy": "deny", "csrf_token": token})
    after_deny = _policy_badges(other_client.get("/servers").get_data(as_text=True))
    admin_page = client.get("/servers").get_data(as_text=True)
    whole_server = client.post("/servers/test/policy", data={"policy": "ask", "csrf_token": token})
    tool_default = client.post("/servers/test/policy", data={"tool": "echo", "policy": "", "csrf_token": token})
    after_ask = _policy_badges(other_client.get("/servers").get_data(as_text=True))
    server_default = client.post("/servers/test/policy", data={"policy": "", "csrf_token": token})
    refused = client.post("/servers/test/policy", data={"policy": "sometimes", "csrf_token": token})
    as_user = other_client.get("/servers").get_data(as_text=True)
    by_user = other_client.post(
        "/servers/test/policy", data={"policy": "run", "csrf_token": csrf_token(other_client, "/servers")}
    )

    assert (before["test__echo"], before["test__forget"]) == ("run", "ask")  # from the tools' annotations
    assert [r.headers["Location"] for r in (denied, whole_server, tool_default, server_default)] == [
        "/servers#server-test"
    ] * 4
    assert after_deny["test__echo"] == "deny"
    assert after_deny["test__add"] == "run"
    assert re.search(r'data-tool="echo">(?:(?!</form>).)*<option value="deny" selected>', admin_page, re.S)
    assert (after_ask["test__echo"], after_ask["test__add"]) == ("ask", "ask")
    assert _policy_badges(as_user) == before
    assert refused.status_code == 422
    assert 'class="policy-form"' not in as_user
    assert by_user.status_code == 403
