"""The pages of users' sign-ins to protected MCP servers: the result page and the client metadata document."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from frontend.app import create_app
from tests.fakes.oauth_provider import FakeOAuthServer
from tests.frontend.conftest import frontend_settings


def test_the_result_page_says_how_the_sign_in_ended(client: FlaskClient) -> None:
    connected = client.get("/oauth/complete?server=github&status=connected").get_data(as_text=True)
    failed = client.get("/oauth/complete?server=github&status=failed").get_data(as_text=True)

    assert "Signed in: github" in connected
    assert "Sign-in failed: github" in failed


def test_a_crafted_result_link_shows_only_our_own_words(client: FlaskClient) -> None:
    page = client.get("/oauth/complete?server=<b>evil</b>&status=Your+account+is+locked").get_data(as_text=True)

    assert "evil" not in page
    assert "locked" not in page
    assert 'data-outcome="expired"' in page


def test_the_client_metadata_document_names_our_callback_under_the_public_https_address(
    tmp_path: Path, orchestrator_url: str, oauth_server: FakeOAuthServer
) -> None:
    settings = frontend_settings(tmp_path, orchestrator_url, oauth_server, public_url="https://chat.example.com")
    document = create_app(settings).test_client().get("/oauth/client-metadata.json").get_json()

    assert document["client_id"] == "https://chat.example.com/oauth/client-metadata.json"
    assert document["redirect_uris"] == ["https://chat.example.com/api/oauth/callback"]
    assert document["token_endpoint_auth_method"] == "none"


def test_there_is_no_client_metadata_document_without_a_public_https_address(client: FlaskClient) -> None:
    assert client.get("/oauth/client-metadata.json").status_code == 404
