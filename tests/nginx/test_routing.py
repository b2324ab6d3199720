"""Where nginx sends requests, and what the upstreams learn about the client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.nginx.conftest import https_client
from tests.nginx.stubs import StubServer
from tests.support.nginx import NginxInstance, running_nginx


async def test_plain_http_redirects_to_the_same_address_over_https(nginx: NginxInstance) -> None:
    async with httpx.AsyncClient(base_url=nginx.http_url) as client:
        response = await client.get("/c/42?tab=tools")

    assert response.status_code == 301
    assert response.headers["location"] == f"https://127.0.0.1:{nginx.https_port}/c/42?tab=tools"


async def test_pages_reach_the_frontend_with_the_client_address_and_the_https_scheme(
    client: httpx.AsyncClient, nginx: NginxInstance, frontend: StubServer, orchestrator: StubServer
) -> None:
    response = await client.get("/servers?page=2")

    assert response.status_code == 200
    assert response.text == "<p>frontend</p>"
    [seen] = frontend.requests
    assert (seen.method, seen.path) == ("GET", "/servers?page=2")
    assert seen.header("X-Forwarded-Proto") == "https"
    assert seen.header("X-Real-IP") == "127.0.0.1"
    assert seen.header("X-Forwarded-For") == "127.0.0.1"
    assert seen.header("Host") == "127.0.0.1"
    assert seen.header("X-Forwarded-Host") == f"127.0.0.1:{nginx.https_port}"
    assert orchestrator.requests == []


async def test_a_forwarded_for_header_from_an_untrusted_address_does_not_change_the_client_address(
    client: httpx.AsyncClient, frontend: StubServer
) -> None:
    await client.get("/", headers={"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.8"})

    [seen] = frontend.requests
    assert seen.header("X-Real-IP") == "127.0.0.1"
    assert seen.header("X-Forwarded-For") == "127.0.0.1"


async def test_a_trusted_proxy_passes_on_the_address_it_saw_and_not_the_ones_the_client_forged(
    frontend: StubServer, orchestrator: StubServer, tmp_path: Path
) -> None:
    async with (
        running_nginx(
            frontend.address, orchestrator.address, tmp_path=tmp_path, trusted_proxies=["127.0.0.1"]
        ) as nginx,
        https_client(nginx) as client,
    ):
        # The proxy appended the address it saw; the client had written a forged one in front.
        await client.get("/", headers={"X-Forwarded-For": "198.51.100.9, 203.0.113.7"})

    [seen] = frontend.requests
    assert seen.header("X-Real-IP") == "203.0.113.7"
    assert seen.header("X-Forwarded-For") == "203.0.113.7"


@pytest.mark.parametrize("path", ["/auth/api-token", "/health", "/health/live", "/ready", "/_auth"])
async def test_the_token_endpoint_and_the_health_probes_are_not_reachable_from_outside(
    client: httpx.AsyncClient, frontend: StubServer, path: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 404
    assert frontend.requests == []


async def test_nginx_answers_its_own_health_check_without_logging_it(
    client: httpx.AsyncClient, nginx: NginxInstance
) -> None:
    async with httpx.AsyncClient(base_url=nginx.http_url) as plain:
        assert (await plain.get("/nginx-health")).text == "ok\n"
    assert (await client.get("/nginx-health")).text == "ok\n"
    await client.get("/after-the-checks")

    # One worker logs in order: once the last request is in the log, the checks would be too.
    entries = await wait_for_access_log(nginx, "/after-the-checks")
    assert [entry["path"] for entry in entries] == ["/after-the-checks"]


async def wait_for_access_log(nginx: NginxInstance, path: str) -> list[dict[str, Any]]:
    """The access log once it has a line for ``path``: nginx writes it just after the response has gone."""
    with anyio.fail_after(5):
        while True:
            entries = nginx.access_log()
            if any(entry["path"] == path for entry in entries):
                return entries
            await anyio.sleep(0.01)
