"""A fake Kubernetes API server for Services: list and watch over real HTTPS, as the real one answers them.

It keeps Services in one namespace with a resource version counter and an event history. ``GET
/api/v1/namespaces/<ns>/services`` lists them (with ``labelSelector`` equality terms and the list's resource
version); with ``watch=true`` it streams ``ADDED``/``MODIFIED``/``DELETED`` events after ``resourceVersion``, sends
an ``ERROR`` event with code 410 when that version is older than the history it keeps (:meth:`compact`), and ends
the stream after ``timeoutSeconds``. Requests without ``Authorization: Bearer <token>`` get 401. Every request is
recorded.

    async with running_kubernetes_api(tls) as api:
        api.put_service(service("search", labels=..., ports=[8080]))
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.asgi import serving


@dataclass
class RecordedRequest:
    path: str
    params: dict[str, str]
    authorization: str | None


@dataclass
class FakeKubernetes:
    """The API server's state; tests change it with :meth:`put_service` and :meth:`delete_service`."""

    namespace: str = "assistant"
    token: str = "service-account-token"
    requests: list[RecordedRequest] = field(default_factory=list[RecordedRequest])
    watch_status: int | None = None
    """When set, watch requests are answered with this HTTP status instead of a stream (410, 500, ...)."""

    def __post_init__(self) -> None:
        self._services: dict[str, dict[str, Any]] = {}
        self._version = 100
        self._oldest_kept = 100  # events after this version are in the history
        self._history: list[tuple[int, str, dict[str, Any]]] = []
        self._changed = asyncio.Condition()
        self._requested = asyncio.Condition()
        self._closing = False

    # --- what tests do ------------------------------------------------------------------------------------------

    async def put_service(self, service: dict[str, Any]) -> None:
        """Create or replace a Service (``ADDED`` or ``MODIFIED``)."""
        name = service["metadata"]["name"]
        event = "MODIFIED" if name in self._services else "ADDED"
        await self._record(event, name, service)

    async def delete_service(self, name: str) -> None:
        await self._record("DELETED", name, self._services[name])

    async def compact(self, *, put: Sequence[dict[str, Any]] = (), delete: Sequence[str] = ()) -> None:
        """Forget the event history, as etcd compaction does: watches from older versions get 410.

        ``put`` and ``delete`` change Services first without any event, as changes a watch missed while it was
        disconnected: only a new list shows them.
        """
        async with self._changed:
            for name in delete:
                del self._services[name]
            for added in put:
                self._version += 1
                stored = json.loads(json.dumps(added))
                stored["metadata"]["resourceVersion"] = str(self._version)
                stored["metadata"].setdefault("namespace", self.namespace)
                self._services[added["metadata"]["name"]] = stored
            self._version += 1
            self._oldest_kept = self._version
            self._history.clear()
            self._changed.notify_all()

    async def until(self, condition: Callable[[], bool], *, within: float = 10.0) -> None:
        """Return once ``condition()`` holds, checked after every request.

        Raises:
            TimeoutError: it did not hold within ``within`` seconds.
        """
        async with asyncio.timeout(within), self._requested:
            await self._requested.wait_for(condition)

    def watches(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.params.get("watch") == "true"]

    def lists(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.params.get("watch") != "true"]

    async def close(self) -> None:
        async with self._changed:
            self._closing = True
            self._changed.notify_all()

    # --- the API ------------------------------------------------------------------------------------------------

    async def _record(self, event: str, name: str, service: dict[str, Any]) -> None:
        async with self._changed:
            self._version += 1
            stored = json.loads(json.dumps(service))
            stored["metadata"]["resourceVersion"] = str(self._version)
            stored["metadata"].setdefault("namespace", self.namespace)
            if event == "DELETED":
                del self._services[name]
            else:
                self._services[name] = stored
            self._history.append((self._version, event, stored))
            self._changed.notify_all()

    async def services(self, request: Request) -> Response:
        async with self._requested:
            self.requests.append(
                RecordedRequest(request.url.path, dict(request.query_params), request.headers.get("authorization"))
            )
            self._requested.notify_all()
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized")
        if request.path_params["namespace"] != self.namespace:
            return _status(403, f'services is forbidden in namespace "{request.path_params["namespace"]}"')
        terms = _selector(request.query_params.get("labelSelector", ""))
        if request.query_params.get("watch") != "true":
            items = [service for service in self._services.values() if _matches(service, terms)]
            return JSONResponse(
                {
                    "kind": "ServiceList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self._version)},
                    "items": items,
                }
            )
        if self.watch_status is not None:
            return _status(self.watch_status, "watch refused")
        since = int(request.query_params.get("resourceVersion") or self._version)
        timeout = float(request.query_params.get("timeoutSeconds", "1800"))
        bookmarks = request.query_params.get("allowWatchBookmarks") == "true"
        return StreamingResponse(self._watch(since, terms, timeout, bookmarks), media_type="application/json")

    async def _watch(self, since: int, terms: dict[str, str], seconds: float, bookmarks: bool) -> AsyncIterator[bytes]:
        if since < self._oldest_kept:
            yield _line(
                "ERROR",
                {
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "Expired",
                    "code": 410,
                    "message": f"too old resource version: {since} ({self._oldest_kept})",
                },
            )
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        sent = since
        while True:
            async with self._changed:
                pending = [entry for entry in self._history if entry[0] > sent]
                if not pending:
                    if self._closing:
                        break
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        await asyncio.wait_for(self._changed.wait(), remaining)
                    except TimeoutError:
                        break
                    if sent < self._oldest_kept:  # compacted while watching
                        yield _line(
                            "ERROR",
                            {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"},
                        )
                        return
                    continue
            for version, event, service in pending:
                sent = version
                if _matches(service, terms):
                    yield _line(event, service)
        if bookmarks and not self._closing:
            yield _line("BOOKMARK", {"kind": "Service", "metadata": {"resourceVersion": str(self._version)}})


def service(
    name: str,
    *,
    ports: list[int | tuple[str, int]] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    external_name: str | None = None,
) -> dict[str, Any]:
    """A Service object as the API server stores it."""
    spec: dict[str, Any] = {
        "ports": [
            {"name": port[0], "port": port[1], "protocol": "TCP"}
            if isinstance(port, tuple)
            else {"port": port, "protocol": "TCP"}
            for port in (ports or [])
        ]
    }
    if external_name is not None:
        spec.update(type="ExternalName", externalName=external_name)
    else:
        spec.update(type="ClusterIP", clusterIP="10.96.0.10")
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"name": name, "uid": f"uid-{name}", "labels": labels or {}, "annotations": annotations or {}},
        "spec": spec,
    }


def _line(event: str, obj: dict[str, Any]) -> bytes:
    return (json.dumps({"type": event, "object": obj}) + "\n").encode()


def _status(code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}, code
    )


def _selector(text: str) -> dict[str, str]:
    terms: dict[str, str] = {}
    for term in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = term.partition("=")
        terms[key.strip()] = value.lstrip("=").strip()
    return terms


def _matches(service: dict[str, Any], terms: dict[str, str]) -> bool:
    labels: dict[str, str] = service["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in terms.items())


# --- TLS and the running server -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    """A self-signed CA-like certificate for 127.0.0.1 and its key, as files."""

    certificate: Path
    key: Path


def make_tls(directory: Path) -> Tls:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kubernetes")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    tls = Tls(directory / "tls.crt", directory / "tls.key")
    tls.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tls


@dataclass
class RunningKubernetes:
    fake: FakeKubernetes
    host: str
    port: int


@asynccontextmanager
async def running_kubernetes_api(tls: Tls, fake: FakeKubernetes | None = None) -> AsyncGenerator[RunningKubernetes]:
    """Serve a :class:`FakeKubernetes` over HTTPS on a free port of 127.0.0.1, in this event loop."""
    fake = fake if fake is not None else FakeKubernetes()
    app = Starlette(routes=[Route("/api/v1/namespaces/{namespace}/services", fake.services)])
    tls_config = {"ssl_certfile": str(tls.certificate), "ssl_keyfile": str(tls.key), "timeout_graceful_shutdown": 2}
    async with serving(app, **tls_config) as port:
        try:
            yield RunningKubernetes(fake, "127.0.0.1", port)
        finally:
            await fake.close()  # ends the open watches, so the server can stop
