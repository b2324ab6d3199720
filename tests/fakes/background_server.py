"""Serving a fake's ASGI app with uvicorn on a background thread, so synchronous and async tests can both use it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT_SECONDS = 10.0


class BackgroundServer:
    """A context manager that serves ``app()`` on ``host``:``port`` (0 picks a free port) until it exits.

    The socket is bound before uvicorn starts, so ``port`` is known when ``app`` is asked for and connections queue up
    (up to ``backlog``) even before uvicorn accepts them. Subclasses give ``app``.
    """

    thread_name = "fake-server"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, backlog: int = 128, **config: Any) -> None:
        self._host = host
        self._requested_port = port
        self._backlog = backlog
        self._config = config
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def app(self) -> ASGIApp:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> None:
        server, sock = self._bind()
        thread = self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self.thread_name, daemon=True
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.thread_name} did not start")
            time.sleep(0.001)

    def run(self, on_listening: Callable[[], None]) -> None:
        """Serve on this thread until interrupted (a fake's command line); ``on_listening`` runs once bound."""
        server, sock = self._bind()
        on_listening()
        server.run(sockets=[sock])

    def _bind(self) -> tuple[uvicorn.Server, socket.socket]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._requested_port))
        sock.listen(self._backlog)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(),
            lifespan="off",
            ws="none",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=1,
            **self._config,
        )
        self._server = uvicorn.Server(config)
        return self._server, sock

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
