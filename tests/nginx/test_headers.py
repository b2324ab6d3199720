"""Response headers: the security headers on every HTTPS response, and nothing that should stay inside."""

from __future__ import annotations

import httpx
import pytest

from tests.nginx.stubs import SESSION_TOKEN, StubResponse, StubServer, always

SECURITY_HEADERS = {
    "strict-transport-security": "max-age=31536000",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        pytest.param("GET", "/", b"", 200, id="page"),
        pytest.param("GET", "/api/conversations", b"", 200, id="api"),
        pytest.param("GET", "/auth/api-token", b"", 404, id="not found"),
        pytest.param("POST", "/servers", b"x" * (3 * 1024 * 1024), 413, id="body too large"),
    ],
)
async def test_security_headers_are_on_every_https_response(
    client: httpx.AsyncClient, method: str, path: str, body: bytes, status: int
) -> None:
    response = await client.request(method, path, content=body)

    assert response.status_code == status
    assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS


async def test_security_headers_are_on_json_errors_nginx_makes_for_the_api(
    client: httpx.AsyncClient, frontend: StubServer
) -> None:
    frontend.respond = always(StubResponse(401))

    response = await client.get("/api/conversations")

    assert response.status_code == 401
    assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS


async def test_nginx_security_headers_replace_the_ones_an_upstream_sends(
    client: httpx.AsyncClient, frontend: StubServer
) -> None:
    own = [("X-Frame-Options", "SAMEORIGIN"), ("Referrer-Policy", "unsafe-url"), ("X-Api-Authorization", "leak")]
    frontend.respond = always(StubResponse(200, own, b"page"))

    response = await client.get("/")

    assert response.headers.get_list("x-frame-options") == ["DENY"]
    assert response.headers.get_list("referrer-policy") == ["strict-origin-when-cross-origin"]
    assert "x-api-authorization" not in response.headers


async def test_the_token_from_the_frontend_never_reaches_the_client(
    client: httpx.AsyncClient, orchestrator: StubServer
) -> None:
    orchestrator.respond = always(StubResponse(200, [("X-Api-Authorization", SESSION_TOKEN)], b"{}"))

    response = await client.get("/api/me")

    assert "x-api-authorization" not in response.headers
    assert SESSION_TOKEN not in response.text


async def test_nginx_does_not_tell_its_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/api-token")

    assert response.headers["server"] == "nginx"
    assert "nginx/" not in response.text
