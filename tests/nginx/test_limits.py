"""Request body and rate limits, each rate in its own zone."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.nginx.conftest import https_client
from tests.nginx.stubs import StubServer
from tests.support.nginx import running_nginx

OVER_TWO_MEGABYTES = b"x" * (2 * 1024 * 1024 + 1)


@pytest.mark.parametrize("path", ["/api/conversations", "/servers"])
async def test_a_body_over_the_limit_is_refused_before_reaching_an_upstream(
    client: httpx.AsyncClient, frontend: StubServer, orchestrator: StubServer, path: str
) -> None:
    response = await client.post(path, content=OVER_TWO_MEGABYTES)

    assert response.status_code == 413
    assert frontend.requests == []
    assert orchestrator.requests == []


async def test_the_api_says_a_body_is_too_large_in_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/conversations", content=OVER_TWO_MEGABYTES)

    assert response.json()["code"] == "payload_too_large"


async def test_a_burst_over_the_api_rate_is_refused_with_429_while_pages_still_load(
    frontend: StubServer, orchestrator: StubServer, tmp_path: Path
) -> None:
    one_a_minute = {"RATE_LIMIT_API": "1r/m", "RATE_LIMIT_API_BURST": "1"}
    async with (
        running_nginx(frontend.address, orchestrator.address, tmp_path=tmp_path, overrides=one_a_minute) as nginx,
        https_client(nginx) as client,
    ):
        allowed = [(await client.get("/api/conversations")).status_code for _ in range(2)]
        refused = await client.get("/api/conversations")
        page = await client.get("/")

    assert allowed == [200, 200]
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert len(orchestrator.requests) == 2
    assert page.status_code == 200


async def test_a_burst_over_the_sign_in_rate_is_refused_with_429_while_the_api_still_answers(
    frontend: StubServer, orchestrator: StubServer, tmp_path: Path
) -> None:
    one_a_minute = {"RATE_LIMIT_SIGN_IN": "1r/m", "RATE_LIMIT_SIGN_IN_BURST": "1"}
    async with (
        running_nginx(frontend.address, orchestrator.address, tmp_path=tmp_path, overrides=one_a_minute) as nginx,
        https_client(nginx) as client,
    ):
        sign_in = await client.get("/login?next=/c/1")
        start = await client.get("/login/github")
        callback = await client.get("/auth/github/callback?code=abc&state=xyz")
        api = await client.get("/api/conversations")

    assert [sign_in.status_code, start.status_code, callback.status_code] == [200, 200, 429]
    assert [request.path for request in frontend.requests] == ["/login?next=/c/1", "/login/github", "/auth/api-token"]
    assert api.status_code == 200


async def test_a_burst_over_the_general_rate_is_refused_with_429_but_the_pages_files_still_load(
    frontend: StubServer, orchestrator: StubServer, tmp_path: Path
) -> None:
    one_a_minute = {"RATE_LIMIT_GENERAL": "1r/m", "RATE_LIMIT_GENERAL_BURST": "1"}
    async with (
        running_nginx(frontend.address, orchestrator.address, tmp_path=tmp_path, overrides=one_a_minute) as nginx,
        https_client(nginx) as client,
    ):
        pages = [(await client.get(path)).status_code for path in ["/", "/c/1", "/servers"]]
        # A page's scripts and styles: many per page load, none of them refused.
        files = [(await client.get(f"/static/js/module{n}.js")).status_code for n in range(30)]
        api = await client.get("/api/me")

    assert pages == [200, 200, 429]
    assert files == [200] * 30
    assert api.status_code == 200
