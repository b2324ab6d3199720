"""Keep the registry in step with the MCP server Services of a namespace: list, then watch, and list again on 410.

The loop is the one Kubernetes informers run. A list gives the Services that exist now and a resource version;
the registry is made to match it (servers whose Service is gone are removed, new ones added, changed ones
replaced). A watch from that version then applies each change as it happens. When the server ends the watch, a new
one continues from the last version seen; when that version is too old (410 Gone), everything starts again with a
list. Any other failure waits with exponential backoff before listing again; the servers already discovered stay
while the API server is unreachable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final, Protocol

import anyio
import httpx

from orchestrator.discovery.kube_api import (
    ClusterCredentials,
    KubernetesApi,
    KubernetesApiError,
    ResourceVersionExpired,
    Service,
    WatchEvent,
)
from orchestrator.discovery.services import InvalidServiceAnnotations, server_config
from orchestrator.errors import ConfigurationError, Conflict, ServerNotFound
from orchestrator.mcp.backoff import Backoff
from orchestrator.mcp.types import ServerConfig, ServerInfo
from orchestrator.settings import Settings

logger = logging.getLogger(__name__)

_BACKOFF_INITIAL: Final = 1.0
_BACKOFF_MAX: Final = 60.0


class ServiceSource(Protocol):
    """What discovery reads: a list with its resource version, then the changes after it."""

    async def list_services(self, namespace: str, label_selector: str) -> tuple[list[Service], str]: ...

    async def watch_services(
        self,
        namespace: str,
        label_selector: str,
        resource_version: str,
        on_event: Callable[[WatchEvent], Awaitable[None]],
        *,
        timeout_seconds: int,
    ) -> str: ...


class ServerSet(Protocol):
    """What discovery changes: the MCP registry."""

    async def add(self, config: ServerConfig) -> ServerInfo: ...

    async def remove(self, server_id: str) -> None: ...


class KubernetesDiscovery:
    """Adds and removes the registry's servers as labelled Services come and go in ``namespace``.

    Args:
        api: the Kubernetes API (``KubernetesApi``).
        servers: the registry to keep in step.
        namespace: where to look.
        label_selector: which Services are MCP servers.
        watch_timeout_seconds: how long one watch request lasts before the server ends it and a new one starts.
        service_token: ``MCP_SERVICE_TOKEN``, sent to servers whose Service asks for it.
    """

    def __init__(
        self,
        api: ServiceSource,
        servers: ServerSet,
        *,
        namespace: str,
        label_selector: str,
        watch_timeout_seconds: int = 300,
        service_token: str | None = None,
        tool_timeout_seconds: float = 60.0,
        connect_timeout_seconds: float = 20.0,
        backoff_initial: float = _BACKOFF_INITIAL,
        backoff_max: float = _BACKOFF_MAX,
    ) -> None:
        self._api = api
        self._servers = servers
        self._namespace = namespace
        self._selector = label_selector
        self._watch_timeout = watch_timeout_seconds
        self._token = service_token
        self._tool_timeout = tool_timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._owned: dict[str, ServerConfig] = {}  # by Service name: the servers this discovery added
        self.synced = anyio.Event()
        """Set once the first list has been applied to the registry."""

    @property
    def discovered(self) -> dict[str, ServerConfig]:
        """The servers added from Services, by Service name."""
        return dict(self._owned)

    async def run(self) -> None:
        """List and watch until cancelled; never raises for the API server's failures."""
        logger.info("watching Services labelled %s in namespace %s for MCP servers", self._selector, self._namespace)
        failing = False
        while True:
            try:
                version = await self._relist()
                while True:
                    version = await self._watch(version)
                    failing = False
                    self._backoff.reset()
            except ResourceVersionExpired:
                # Once is routine (the watch fell behind); again straight after a fresh list, something is wrong.
                if failing:
                    await self._wait("the resource version expired again")
                logger.info("Kubernetes discovery: the watch's resource version expired; listing again")
                failing = True
            except (KubernetesApiError, httpx.HTTPError, TimeoutError, OSError) as exc:
                await self._wait(_describe(exc))
                failing = True

    async def _wait(self, reason: str) -> None:
        delay = self._backoff.next_delay()
        logger.warning("Kubernetes discovery failed (%s); retrying in %.1fs", reason, delay)
        await anyio.sleep(delay)

    async def _relist(self) -> str:
        services, version = await self._api.list_services(self._namespace, self._selector)
        wanted: dict[str, ServerConfig] = {}
        for service in services:
            config = self._config(service)
            if config is not None:
                wanted[service.metadata.name] = config
        for name in [name for name, config in self._owned.items() if wanted.get(name) != config]:
            await self._remove(name)
        for name, config in wanted.items():
            if name not in self._owned:
                await self._add(name, config)
        self.synced.set()
        return version

    async def _watch(self, version: str) -> str:
        return await self._api.watch_services(
            self._namespace, self._selector, version, self._apply, timeout_seconds=self._watch_timeout
        )

    async def _apply(self, event: WatchEvent) -> None:
        name = event.service.metadata.name
        if event.type == "DELETED":
            await self._remove(name)
            return
        config = self._config(event.service)
        if self._owned.get(name) == config:
            return
        await self._remove(name)
        if config is not None:
            await self._add(name, config)

    def _config(self, service: Service) -> ServerConfig | None:
        try:
            config = server_config(service, namespace=self._namespace)
        except InvalidServiceAnnotations as exc:
            logger.warning("Kubernetes discovery: ignoring %s", exc)
            return None
        update: dict[str, object] = {
            "tool_timeout_seconds": self._tool_timeout,
            "connect_timeout_seconds": self._connect_timeout,
        }
        if config.use_service_token and self._token is not None:
            update["headers"] = {"Authorization": f"Bearer {self._token}"}
        return config.model_copy(update=update)

    async def _add(self, name: str, config: ServerConfig) -> None:
        try:
            await self._servers.add(config)
        except Conflict:
            logger.warning(
                "Kubernetes discovery: Service %s wants server id %r, which another server already has; ignoring it "
                "(set the annotation mcp-assistant.io/id to another id)",
                name,
                config.id,
            )
            return
        self._owned[name] = config
        logger.info("Kubernetes discovery: added MCP server %s from Service %s", config.id, name)

    async def _remove(self, name: str) -> None:
        config = self._owned.pop(name, None)
        if config is None:
            return
        try:
            await self._servers.remove(config.id)
        except ServerNotFound:
            return  # an admin removed it already
        logger.info("Kubernetes discovery: removed MCP server %s (Service %s)", config.id, name)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "the API server did not answer in time"
    return str(exc) or type(exc).__name__


def cluster_settings(settings: Settings) -> tuple[ClusterCredentials, str]:
    """The pod's credentials and the namespace to watch.

    Raises:
        ConfigurationError: not in a pod, no service account token mounted, or no namespace to watch.
    """
    credentials = ClusterCredentials.in_cluster(settings.mcp_kubernetes_service_account_dir, os.environ)
    namespace = settings.mcp_kubernetes_namespace or credentials.namespace
    if namespace is None:
        raise ConfigurationError(
            ["MCP_KUBERNETES_NAMESPACE: not set, and the service account does not say the pod's namespace"]
        )
    return credentials, namespace


@asynccontextmanager
async def kubernetes_discovery(settings: Settings, servers: ServerSet) -> AsyncGenerator[KubernetesDiscovery]:
    """Run discovery with the pod's service account for as long as the block lasts.

    Raises:
        ConfigurationError: not in a pod, no service account token mounted, or no namespace to watch.
    """
    credentials, namespace = cluster_settings(settings)
    token = settings.mcp_service_token.get_secret_value() if settings.mcp_service_token else None
    async with KubernetesApi.connect(credentials) as api, anyio.create_task_group() as group:
        discovery = KubernetesDiscovery(
            api,
            servers,
            namespace=namespace,
            label_selector=settings.mcp_kubernetes_label_selector,
            watch_timeout_seconds=settings.mcp_kubernetes_watch_timeout_seconds,
            service_token=token,
            tool_timeout_seconds=settings.mcp_tool_timeout_seconds,
            connect_timeout_seconds=settings.mcp_connect_timeout_seconds,
        )
        group.start_soon(discovery.run, name="kubernetes-discovery")
        try:
            yield discovery
        finally:
            group.cancel_scope.cancel()
