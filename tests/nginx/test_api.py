"""/api/: vouched for by the frontend, answered by the orchestrator, streamed as it comes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx

from tests.nginx.conftest import https_client
from tests.nginx.stubs import SESSION_TOKEN, SeenRequest, StubResponse, StubServer, always
from tests.support.nginx import running_nginx
from tests.support.service import free_port
from tests.support.sse import read_events

SIGNED_IN = {"Cookie": "assistant_session=abc", "X-CSRF-Token": "csrf-123"}


def refuse(status: int) -> StubResponse:
    return StubResponse(status, [("Content-Type", "text/html")], b"<p>the frontend's own page</p>")


async def test_api_requests_carry_the_token_the_frontend_vouched_with(
    client: httpx.AsyncClient, frontend: StubServer, orchestrator: StubServer
) -> None:
    response = await client.post("/api/conversations?limit=5", headers=SIGNED_IN, json={"title": "hello"})

    assert response.status_code == 200
    assert response.json() == {"answered_by": "orchestrator"}
    assert "x-api-authorization" not in response.headers
    [check] = frontend.requests
    assert (check.method, check.path, check.body) == ("GET", "/auth/api-token", b"")
    assert check.header("X-Original-Method") == "POST"
    assert check.header("X-Original-URI") == "/api/conversations?limit=5"
    assert check.header("Cookie") == "assistant_session=abc"
    assert check.header("X-CSRF-Token") == "csrf-123"
    assert check.header("Sec-Auth-Request") == "1"
    assert check.header("Content-Length") is None
    [call] = orchestrator.requests
    assert (call.method, call.path) == ("POST", "/api/conversations?limit=5")
    assert json.loads(call.body) == {"title": "hello"}
    assert call.header("Authorization") == SESSION_TOKEN
    assert call.header("X-Forwarded-Proto") == "https"
    assert call.header("X-Real-IP") == "127.0.0.1"


async def test_a_forged_authorization_header_is_replaced_by_the_token_the_frontend_returned(
    client: httpx.AsyncClient, orchestrator: StubServer
) -> None:
    await client.get("/api/me", headers={**SIGNED_IN, "Authorization": "Bearer forged"})

    [call] = orchestrator.requests
    assert call.header("Authorization") == SESSION_TOKEN


async def test_a_call_the_frontend_vouches_for_without_a_token_reaches_the_orchestrator_without_one(
    client: httpx.AsyncClient, frontend: StubServer, orchestrator: StubServer
) -> None:
    frontend.respond = always(StubResponse(204))

    await client.get("/api/me", headers={"Authorization": "Bearer forged"})

    [call] = orchestrator.requests
    assert call.header_values("Authorization") == []


async def test_a_signed_out_caller_gets_a_json_401_and_never_reaches_the_orchestrator(
    client: httpx.AsyncClient, frontend: StubServer, orchestrator: StubServer
) -> None:
    frontend.respond = always(refuse(401))

    response = await client.get("/api/conversations")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "sign in first", "code": "unauthenticated"}
    assert orchestrator.requests == []


async def test_a_bad_csrf_token_gets_a_json_403_and_never_reaches_the_orchestrator(
    client: httpx.AsyncClient, frontend: StubServer, orchestrator: StubServer
) -> None:
    frontend.respond = always(refuse(403))

    response = await client.post("/api/conversations", headers={"Cookie": "assistant_session=abc"}, json={})

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == "forbidden"
    assert "csrf" in response.json()["detail"]
    assert orchestrator.requests == []


async def test_errors_the_orchestrator_answers_pass_through_unchanged(
    client: httpx.AsyncClient, orchestrator: StubServer
) -> None:
    body = b'{"detail": "no such conversation", "code": "not_found"}'
    orchestrator.respond = always(StubResponse(404, [("Content-Type", "application/json")], body))

    response = await client.get("/api/conversations/missing", headers=SIGNED_IN)

    assert (response.status_code, response.content) == (404, body)


async def test_an_unreachable_orchestrator_gets_a_json_502(frontend: StubServer, tmp_path: Path) -> None:
    async with (
        running_nginx(frontend.address, f"127.0.0.1:{free_port()}", tmp_path=tmp_path) as nginx,
        https_client(nginx) as client,
    ):
        response = await client.get("/api/conversations", headers=SIGNED_IN)

    assert response.status_code == 502
    assert response.json()["code"] == "unavailable"


async def test_server_sent_events_reach_the_client_before_the_stream_ends(
    client: httpx.AsyncClient, orchestrator: StubServer
) -> None:
    first_event_received = threading.Event()

    def events() -> Iterator[bytes]:
        yield b'event: token\ndata: {"text": "first"}\n\n'
        # Were nginx buffering, the client would see nothing before this returns, and the test would time out.
        if first_event_received.wait(timeout=30):
            yield b'event: message_end\ndata: {"text": "last"}\n\n'

    def stream(request: SeenRequest) -> StubResponse:
        return StubResponse(200, [("Content-Type", "text/event-stream")], stream=events)

    orchestrator.respond = stream
    try:
        async with client.stream(
            "POST", "/api/conversations/1/messages", headers={**SIGNED_IN, "Accept": "text/event-stream"}, json={}
        ) as response:
            received = read_events(response)
            with anyio.fail_after(5):
                first = await anext(received)
            first_event_received.set()
            with anyio.fail_after(5):
                rest = [event async for event in received]
    finally:
        first_event_received.set()

    assert response.headers["content-type"] == "text/event-stream"
    assert (first.event, first.data) == ("token", {"text": "first"})
    assert [(event.event, event.data) for event in rest] == [("message_end", {"text": "last"})]
