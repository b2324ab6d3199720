"""/v1/ and /mcp: other clients' API keys go straight to the orchestrator, and streams are not buffered."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio
import httpx
import pytest

from tests.nginx.stubs import SeenRequest, StubResponse, StubServer

API_KEY = "Bearer mcpa_test-key"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("POST", "/mcp")]
)
async def test_api_key_requests_reach_the_orchestrator_with_their_key_and_no_session_check(
    client: httpx.AsyncClient, frontend: StubServer, orchestrator: StubServer, method: str, path: str
) -> None:
    response = await client.request(method, path, headers={"Authorization": API_KEY}, json={})

    assert response.status_code == 200
    [seen] = orchestrator.requests
    assert (seen.method, seen.path) == (method, path)
    assert seen.header("Authorization") == API_KEY
    assert seen.header("X-Forwarded-Proto") == "https"
    assert frontend.requests == []


async def test_a_streamed_completion_reaches_the_client_chunk_by_chunk(
    client: httpx.AsyncClient, orchestrator: StubServer
) -> None:
    first_chunk_received = threading.Event()

    def chunks() -> Iterator[bytes]:
        yield b'data: {"choices": []}\n\n'
        # Were nginx buffering, the client would see nothing before this returns, and the test would time out.
        if first_chunk_received.wait(timeout=30):
            yield b"data: [DONE]\n\n"

    def stream(request: SeenRequest) -> StubResponse:
        return StubResponse(200, [("Content-Type", "text/event-stream")], stream=chunks)

    orchestrator.respond = stream
    try:
        async with client.stream(
            "POST", "/v1/chat/completions", headers={"Authorization": API_KEY}, json={"stream": True}
        ) as response:
            lines = response.aiter_lines()
            with anyio.fail_after(5):
                first = await anext(lines)
            first_chunk_received.set()
            with anyio.fail_after(5):
                rest = [line async for line in lines if line]
    finally:
        first_chunk_received.set()

    assert first == 'data: {"choices": []}'
    assert rest == ["data: [DONE]"]
