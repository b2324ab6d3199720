"""Tiny real HTTP servers standing in for the frontend and the orchestrator behind nginx.

Each runs in its own thread, records every request it gets and answers with whatever ``respond`` returns; a
streamed answer is sent chunk by chunk as its iterator yields, so a test can hold a stream open on an event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

SESSION_TOKEN = "Bearer token-from-the-session"


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        """The header's value; ``AssertionError`` when it came more than once."""
        values = self.header_values(name)
        assert len(values) <= 1, f"{name} came {len(values)} times: {values}"
        return values[0] if values else None


@dataclass(frozen=True)
class StubResponse:
    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    stream: Callable[[], Iterator[bytes]] | None = field(default=None)


Responder = Callable[[SeenRequest], StubResponse]


def always(response: StubResponse) -> Responder:
    """A responder giving ``response`` to every request."""
    return lambda request: response


def frontend_pages(request: SeenRequest) -> StubResponse:
    """The frontend: vouches for every API call with ``SESSION_TOKEN``, and serves a page on every other path."""
    if request.path == "/auth/api-token":
        return StubResponse(204, [("X-Api-Authorization", SESSION_TOKEN)])
    return StubResponse(200, [("Content-Type", "text/html; charset=utf-8")], b"<p>frontend</p>")


def orchestrator_api(request: SeenRequest) -> StubResponse:
    return StubResponse(200, [("Content-Type", "application/json")], b'{"answered_by": "orchestrator"}')


class StubServer:
    """An HTTP/1.1 server on a free port of 127.0.0.1, serving from a thread while the ``with`` block runs."""

    def __init__(self, respond: Responder) -> None:
        self.respond: Responder = respond
        self._requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server = _StubHTTPServer(self)
        # shutdown() waits for the serving loop to notice, at most one poll interval.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="stub-upstream", daemon=True
        )

    @property
    def address(self) -> str:
        """``host:port``, as nginx's ``server`` directive takes it."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port!s}"

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._requests)

    def record(self, request: SeenRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _StubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stub: StubServer) -> None:
        self.stub = stub
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # nginx closing a connection mid-stream (a client that went away) is not a failure of the stub.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        assert isinstance(self.server, _StubHTTPServer)
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        request = SeenRequest(
            method=self.command,
            path=self.path,
            headers=tuple((str(name), str(value)) for name, value in self.headers.items()),
            body=self.rfile.read(length),
        )
        stub.record(request)
        response = stub.respond(request)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.stream is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in response.stream():
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)
