"""The few Kubernetes API calls discovery needs: list and watch Services, as the pod's service account.

Kept to plain httpx: a list, a streamed watch and a bearer token read from a file are all it takes, and owning the
watch loop is what lets every wait be bounded and a stale resource version lead to a fresh list (see
``orchestrator.discovery.watcher``).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, cast

import anyio
import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import ConfigurationError, OrchestratorError

CONNECT_TIMEOUT_SECONDS: Final = 10.0
REQUEST_TIMEOUT_SECONDS: Final = 30.0
WATCH_GRACE_SECONDS: Final = 30.0
"""A watch asks the server to end it after ``timeout_seconds``; past that and this grace it is abandoned."""

_PAGE_SIZE: Final = 500


class KubernetesApiError(OrchestratorError):
    """The API server answered with an error, or with something that is not what the API promises."""

    def __init__(self, status: int | None, message: str) -> None:
        self.status = status
        super().__init__(f"Kubernetes API: {message}" + (f" (HTTP {status})" if status else ""))


class ResourceVersionExpired(KubernetesApiError):
    """410 Gone: the watch's resource version is older than the server keeps; list again to start afresh."""

    def __init__(self) -> None:
        super().__init__(410, "the resource version is too old; listing again")


# --- the objects, as far as discovery reads them -----------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class ObjectMeta(_Model):
    name: str
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = Field(default=None, alias="resourceVersion")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ServicePort(_Model):
    name: str | None = None
    port: int
    protocol: str = "TCP"


class ServiceSpec(_Model):
    type: str = "ClusterIP"
    ports: tuple[ServicePort, ...] = ()
    external_name: str | None = Field(default=None, alias="externalName")


class Service(_Model):
    metadata: ObjectMeta
    spec: ServiceSpec = Field(default_factory=ServiceSpec)


class _ListMeta(_Model):
    resource_version: str = Field(alias="resourceVersion")
    continue_token: str | None = Field(default=None, alias="continue")


class _ServiceList(_Model):
    metadata: _ListMeta
    items: tuple[Service, ...] = ()


EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: EventType
    service: Service


# --- credentials ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterCredentials:
    """Where the API server is and how to authenticate to it: a pod's service account.

    Attributes:
        api_url: ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``.
        token_file: the service account token, read again before each request (the kubelet rotates it).
        ca_file: the cluster's CA bundle, which the API server's certificate must chain to.
        namespace: the pod's own namespace.
    """

    api_url: str
    token_file: Path
    ca_file: Path
    namespace: str | None

    @classmethod
    def in_cluster(cls, service_account_dir: Path, environ: Mapping[str, str]) -> ClusterCredentials:
        """The credentials Kubernetes gives every pod (unless ``automountServiceAccountToken`` is off).

        Raises:
            ConfigurationError: not running in a pod, or its service account token is not mounted.
        """
        host = environ.get("KUBERNETES_SERVICE_HOST", "")
        port = environ.get("KUBERNETES_SERVICE_PORT", "")
        problems: list[str] = []
        if not host or not port:
            problems.append(
                "MCP_KUBERNETES_DISCOVERY: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set; "
                "discovery works inside a Kubernetes pod only"
            )
        token_file = service_account_dir / "token"
        ca_file = service_account_dir / "ca.crt"
        for needed in (token_file, ca_file):
            if not needed.is_file():
                problems.append(
                    f"MCP_KUBERNETES_DISCOVERY: {needed} does not exist; mount the service account token "
                    "(automountServiceAccountToken: true) or set MCP_KUBERNETES_SERVICE_ACCOUNT_DIR"
                )
        if problems:
            raise ConfigurationError(problems)
        namespace_file = service_account_dir / "namespace"
        namespace = namespace_file.read_text().strip() if namespace_file.is_file() else None
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 address
        return cls(f"https://{host}:{port}", token_file, ca_file, namespace or None)


class _TokenFileAuth(httpx.Auth):
    """``Authorization: Bearer <token>``, the token read from its file for every request."""

    def __init__(self, token_file: Path) -> None:
        self._token_file = token_file

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {self._token_file.read_text().strip()}"
        yield request


# --- the client -------------------------------------------------------------------------------------------------


class KubernetesApi:
    """List and watch Services. Open with :meth:`connect`; every request is bounded in time."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    @classmethod
    @asynccontextmanager
    async def connect(cls, credentials: ClusterCredentials) -> AsyncGenerator[KubernetesApi]:
        context = ssl.create_default_context(cafile=str(credentials.ca_file))
        timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
        async with httpx.AsyncClient(
            base_url=credentials.api_url,
            auth=_TokenFileAuth(credentials.token_file),
            verify=context,
            timeout=timeout,
            headers={"Accept": "application/json"},
            trust_env=False,
        ) as client:
            yield cls(client)

    async def list_services(self, namespace: str, label_selector: str) -> tuple[list[Service], str]:
        """Every Service in ``namespace`` matching ``label_selector``, and the list's resource version.

        Raises:
            KubernetesApiError: the server refused or answered nonsense.
            httpx.HTTPError: the server could not be reached or the request timed out.
        """
        services: list[Service] = []
        params: dict[str, str | int] = {"labelSelector": label_selector, "limit": _PAGE_SIZE}
        while True:
            response = await self._client.get(_services_path(namespace), params=params)
            _raise_for_status(response)
            try:
                page = _ServiceList.model_validate_json(response.content)
            except ValidationError as exc:
                raise KubernetesApiError(response.status_code, f"unexpected ServiceList: {exc}") from None
            services.extend(page.items)
            if not page.metadata.continue_token:
                return services, page.metadata.resource_version
            params["continue"] = page.metadata.continue_token

    async def watch_services(
        self,
        namespace: str,
        label_selector: str,
        resource_version: str,
        on_event: Callable[[WatchEvent], Awaitable[None]],
        *,
        timeout_seconds: int,
    ) -> str:
        """Follow changes after ``resource_version`` until the server ends the watch; returns the last version seen.

        The server is asked to end the watch after ``timeout_seconds`` and to send bookmarks, so the version
        returned stays fresh even when nothing changes; a watch that is silent past ``timeout_seconds`` plus
        ``WATCH_GRACE_SECONDS`` is abandoned (``TimeoutError``).

        Raises:
            ResourceVersionExpired: 410 Gone; list again.
            KubernetesApiError: any other error status or error event.
            httpx.HTTPError: the connection failed.
            TimeoutError: the watch outlived its bound.
        """
        params: dict[str, str | int] = {
            "watch": "true",
            "labelSelector": label_selector,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
        }
        timeout = httpx.Timeout(timeout_seconds + WATCH_GRACE_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
        with anyio.fail_after(timeout_seconds + WATCH_GRACE_SECONDS):
            async with self._client.stream(
                "GET", _services_path(namespace), params=params, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for_status(response)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = _parse_event(line)
                    if event is None:
                        continue
                    event_type, obj = event
                    version = _resource_version(obj)
                    if event_type != "BOOKMARK":
                        await on_event(WatchEvent(event_type, _service(obj)))
                    resource_version = version or resource_version
        return resource_version


def _services_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/services"


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    if response.status_code == 410:
        raise ResourceVersionExpired
    message = response.reason_phrase or "request failed"
    try:
        body: object = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = cast(dict[str, Any], body).get("message")
        if isinstance(detail, str) and detail:
            message = detail
    raise KubernetesApiError(response.status_code, message)


def _parse_event(line: str) -> tuple[Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"], dict[str, Any]] | None:
    """One line of a watch stream; raises for ``ERROR`` events (a 410 among them)."""
    try:
        event = _RawEvent.model_validate_json(line)
    except ValidationError as exc:
        raise KubernetesApiError(None, f"unreadable watch event: {exc}") from None
    if event.type == "ERROR":
        code = event.object.get("code")
        if code == 410:
            raise ResourceVersionExpired
        message = event.object.get("message")
        raise KubernetesApiError(code if isinstance(code, int) else None, str(message or "error event"))
    if event.type not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
        return None  # a type newer than this client: nothing it can act on
    return event.type, event.object


class _RawEvent(_Model):
    type: str
    object: dict[str, Any]


def _resource_version(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        version = cast(dict[str, Any], metadata).get("resourceVersion")
        if isinstance(version, str) and version:
            return version
    return None


def _service(obj: Mapping[str, Any]) -> Service:
    try:
        return Service.model_validate(obj)
    except ValidationError as exc:
        raise KubernetesApiError(None, f"unexpected Service in a watch event: {exc}") from None
