"""HTTP metrics shared by the orchestrator and the frontend, and the ``/metrics`` exposition of a process.

Metrics are process-wide, as ``prometheus_client`` intends. Under several worker processes (gunicorn, or uvicorn
with workers), set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by the workers before they start: every
worker then writes its samples there and ``/metrics`` of any worker reports the sum of all.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"
# What a proxy (nginx, an ingress controller, a load balancer) adds to the requests it forwards.
FORWARDING_HEADERS = frozenset({"x-forwarded-for", "x-real-ip", "forwarded"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Seconds to answer an HTTP request (to the first byte for event streams), by method, route template and status.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method, route, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_REQUEST_DURATION.labels(*labels).observe(seconds)


def share_metrics_between_workers(module: str) -> None:
    """Before starting worker processes: make them write their metrics where ``/metrics`` of any of them reads all.

    prometheus_client reads ``PROMETHEUS_MULTIPROC_DIR`` when it is imported, so without it this process starts
    again (``python -m <module>``, same arguments) with a new empty directory; a directory that is given is emptied
    of a previous run's files.
    """
    directory = os.environ.get(MULTIPROCESS_ENV)
    if not directory:
        os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix=f"assistant-{module}-metrics-")
        os.execv(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]])
    for stale in Path(directory).glob("*.db"):
        stale.unlink(missing_ok=True)


def forwarded_by_a_proxy(header_names: Iterable[str]) -> bool:
    """Whether a request came through a proxy, judging by its headers' names.

    ``/metrics`` is for Prometheus, which scrapes each pod or container directly on the internal network; a request
    that an ingress or nginx forwarded comes from outside, where the metrics are not published.
    """
    return any(name.lower() in FORWARDING_HEADERS for name in header_names)


def exposition() -> tuple[bytes, str]:
    """The metrics of this process, or of every worker in multiprocess mode, and their content type."""
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by its route template (``/api/conversations/{conversation_id}``).

    An event stream is timed to its first byte: its length is the length of a chat turn, which the model and tool
    metrics measure.
    """

    def __init__(self, app: ASGIApp, *, skip: Callable[[str], bool] = lambda _path: False) -> None:
        self.app = app
        self._skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._skip(scope["path"]):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                observe_request(scope["method"], _route(scope), status, time.perf_counter() - started)

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = dict(message.get("headers", ()))
                if headers.get(b"content-type", b"").startswith(b"text/event-stream"):
                    observe()
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            observe()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
