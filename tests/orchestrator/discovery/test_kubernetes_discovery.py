"""In-cluster discovery against a fake Kubernetes API over real HTTPS, with real MCP servers behind the Services."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.discovery.kube_api import ClusterCredentials, KubernetesApi
from orchestrator.discovery.watcher import KubernetesDiscovery
from orchestrator.errors import ConfigurationError
from orchestrator.mcp.registry import McpRegistry
from orchestrator.mcp.types import ServerConfig
from orchestrator.settings import Settings
from tests.fakes.kubernetes_api import FakeKubernetes, RunningKubernetes, Tls, make_tls, running_kubernetes_api, service
from tests.fakes.mcp_http import HttpTestServer, running_http_server
from tests.orchestrator.mcp.helpers import FAST_BACKOFF, Changes
from tests.support.service import running_service

LABELS = {"mcp-assistant.io/mcp-server": "true"}
SELECTOR = "mcp-assistant.io/mcp-server=true"


@pytest.fixture(scope="module")
async def first_server() -> AsyncIterator[HttpTestServer]:
    async with running_http_server("streamable-http", name="first") as server:
        yield server


@pytest.fixture(scope="module")
async def second_server() -> AsyncIterator[HttpTestServer]:
    async with running_http_server("streamable-http", name="second") as server:
        yield server


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("kube-tls"))


@dataclass
class Cluster:
    api: RunningKubernetes
    service_account: Path

    @property
    def fake(self) -> FakeKubernetes:
        return self.api.fake


@pytest.fixture
async def cluster(tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    """The fake API server and a pod's view of it: the service account directory and the standard variables."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    fake = FakeKubernetes()
    (account / "token").write_text(fake.token + "\n")
    (account / "ca.crt").write_bytes(tls.certificate.read_bytes())
    (account / "namespace").write_text(fake.namespace)
    async with running_kubernetes_api(tls, fake) as api:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", api.host)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
        yield Cluster(api, account)


def mcp_service(name: str, server: HttpTestServer, **annotations: str) -> dict[str, Any]:
    """A Service of type ExternalName standing for ``server`` (which listens on 127.0.0.1)."""
    return service(
        name,
        ports=[("mcp", server.port)],
        labels=LABELS,
        annotations={f"mcp-assistant.io/{key.replace('_', '-')}": value for key, value in annotations.items()},
        external_name="127.0.0.1",
    )


@asynccontextmanager
async def discovering(cluster: Cluster, changes: Changes) -> AsyncGenerator[tuple[McpRegistry, KubernetesDiscovery]]:
    credentials = ClusterCredentials.in_cluster(cluster.service_account, os.environ)
    async with (
        McpRegistry(on_change=changes, **FAST_BACKOFF) as registry,
        KubernetesApi.connect(credentials) as api,
    ):
        discovery = KubernetesDiscovery(
            api,
            registry,
            namespace=cluster.fake.namespace,
            label_selector=SELECTOR,
            watch_timeout_seconds=30,
            connect_timeout_seconds=5,
            backoff_initial=0.05,
            backoff_max=0.2,
        )
        async with anyio.create_task_group() as group:
            group.start_soon(discovery.run)
            yield registry, discovery
            group.cancel_scope.cancel()


def healthy(registry: McpRegistry, server_id: str) -> bool:
    return any(info.id == server_id and info.status == "healthy" for info in registry.servers())


def url_of(registry: McpRegistry, server_id: str) -> str | None:
    return next((info.url for info in registry.servers() if info.id == server_id), None)


def ids(registry: McpRegistry) -> set[str]:
    return {info.id for info in registry.servers()}


async def test_a_labelled_service_joins_the_registry_and_its_tools_answer(
    cluster: Cluster, first_server: HttpTestServer
) -> None:
    await cluster.fake.put_service(mcp_service("search", first_server, send_user_id="true"))
    await cluster.fake.put_service(service("unlabelled", ports=[80], external_name="127.0.0.1"))
    changes = Changes()

    async with discovering(cluster, changes) as (registry, _):
        await changes.until(lambda: healthy(registry, "search"), within=20)
        answered = await registry.call_tool("search__name", {})
        user = await registry.call_tool("search__whoami", {}, user_id="user-3")
        info = registry.server("search")

    assert answered.text == "first"
    assert user.text == "user-3"
    assert (info.source, info.transport, info.url) == (
        "discovery",
        "streamable-http",
        f"http://127.0.0.1:{first_server.port}/mcp",
    )


async def test_every_request_carries_the_service_account_token_and_the_label_selector(
    cluster: Cluster, first_server: HttpTestServer
) -> None:
    await cluster.fake.put_service(mcp_service("search", first_server))
    changes = Changes()

    async with discovering(cluster, changes) as (registry, _):
        await changes.until(lambda: "search" in ids(registry))
        await cluster.fake.until(lambda: bool(cluster.fake.watches()))

    requests = cluster.fake.requests
    assert requests
    assert {request.authorization for request in requests} == {f"Bearer {cluster.fake.token}"}
    assert {request.params["labelSelector"] for request in requests} == {SELECTOR}
    assert cluster.fake.lists()[0].path == "/api/v1/namespaces/assistant/services"
    watch = cluster.fake.watches()[0].params
    assert (watch["allowWatchBookmarks"], watch["timeoutSeconds"]) == ("true", "30")
    assert int(watch["resourceVersion"]) > 100


async def test_watch_events_add_change_and_remove_servers_live(
    cluster: Cluster, first_server: HttpTestServer, second_server: HttpTestServer
) -> None:
    changes = Changes()
    async with discovering(cluster, changes) as (registry, discovery):
        await discovery.synced.wait()
        assert ids(registry) == set()

        await cluster.fake.put_service(mcp_service("search", first_server))  # ADDED
        await changes.until(lambda: healthy(registry, "search"), within=20)
        first = (await registry.call_tool("search__name", {})).text

        moved = mcp_service("search", second_server)  # MODIFIED: now another server's port
        await cluster.fake.put_service(moved)
        await changes.until(lambda: url_of(registry, "search") == f"http://127.0.0.1:{second_server.port}/mcp")
        await changes.until(lambda: healthy(registry, "search"), within=20)
        second = (await registry.call_tool("search__name", {})).text

        await cluster.fake.delete_service("search")  # DELETED
        await changes.until(lambda: ids(registry) == set())

    assert (first, second) == ("first", "second")


async def test_an_expired_resource_version_lists_again_and_catches_up_on_missed_changes(
    cluster: Cluster, first_server: HttpTestServer, second_server: HttpTestServer
) -> None:
    await cluster.fake.put_service(mcp_service("old", first_server))
    changes = Changes()
    async with discovering(cluster, changes) as (registry, _):
        await changes.until(lambda: ids(registry) == {"old"})
        lists_before = len(cluster.fake.lists())

        # Changes the watch never sees as events, then 410 Gone on the open watch.
        await cluster.fake.compact(delete=["old"], put=[mcp_service("new", second_server)])
        await changes.until(lambda: ids(registry) == {"new"})
        await changes.until(lambda: healthy(registry, "new"), within=20)

    assert len(cluster.fake.lists()) == lists_before + 1


async def test_a_410_status_on_the_watch_request_also_lists_again(
    cluster: Cluster, first_server: HttpTestServer
) -> None:
    cluster.fake.watch_status = 410
    changes = Changes()
    async with discovering(cluster, changes) as (registry, discovery):
        await discovery.synced.wait()
        await cluster.fake.until(lambda: len(cluster.fake.lists()) >= 3)
        cluster.fake.watch_status = None
        await cluster.fake.put_service(mcp_service("late", first_server))
        await changes.until(lambda: "late" in ids(registry), within=10)


async def test_api_errors_keep_the_servers_already_found_and_are_retried(
    cluster: Cluster, first_server: HttpTestServer
) -> None:
    await cluster.fake.put_service(mcp_service("search", first_server))
    changes = Changes()
    async with discovering(cluster, changes) as (registry, discovery):
        await discovery.synced.wait()
        cluster.fake.watch_status = 500
        await cluster.fake.compact()  # ends the open watch; the next ones fail with 500
        watches = len(cluster.fake.watches())
        await cluster.fake.until(lambda: len(cluster.fake.watches()) >= watches + 3)
        assert ids(registry) == {"search"}

        cluster.fake.watch_status = None
        await cluster.fake.delete_service("search")
        await changes.until(lambda: ids(registry) == set(), within=10)


async def test_a_rotated_token_is_read_again(cluster: Cluster, first_server: HttpTestServer) -> None:
    (cluster.service_account / "token").write_text("expired-token")
    await cluster.fake.put_service(mcp_service("search", first_server))
    changes = Changes()
    async with discovering(cluster, changes) as (registry, _):
        await cluster.fake.until(
            lambda: sum(request.authorization == "Bearer expired-token" for request in cluster.fake.requests) >= 2
        )
        assert ids(registry) == set()

        (cluster.service_account / "token").write_text(cluster.fake.token)
        await changes.until(lambda: ids(registry) == {"search"}, within=10)


async def test_a_service_whose_id_is_taken_is_ignored_and_the_others_still_join(
    cluster: Cluster, first_server: HttpTestServer
) -> None:
    await cluster.fake.put_service(mcp_service("clash", first_server, id="configured"))
    await cluster.fake.put_service(mcp_service("broken", first_server, transport="carrier-pigeon"))
    await cluster.fake.put_service(mcp_service("fine", first_server))
    changes = Changes()
    async with discovering(cluster, changes) as (registry, discovery):
        configured = ServerConfig(id="configured", transport="streamable-http", url=first_server.url)
        await registry.add(configured)
        await discovery.synced.wait()
        await changes.until(lambda: "fine" in ids(registry))

        assert ids(registry) == {"configured", "fine"}
        assert set(discovery.discovered) == {"fine"}


async def test_the_service_starts_discovery_when_enabled(cluster: Cluster, first_server: HttpTestServer) -> None:
    await cluster.fake.put_service(mcp_service("search", first_server, use_service_token="true"))
    settings = Settings(
        _env_file=None,  # pyright: ignore[reportCallIssue]
        mcp_builtin_servers=False,
        mcp_kubernetes_discovery=True,
        mcp_kubernetes_service_account_dir=cluster.service_account,
        mcp_service_token="s" * 40,
    )

    async with running_service(settings) as running:
        await cluster.fake.until(lambda: bool(cluster.fake.watches()))  # listed, so the server was added
        assert await running.state.registry.wait_until_settled(20)
        answered = await running.state.registry.call_tool("search__name", {})
        listed = (await running.client.get("/api/servers")).json()

    assert [(server["id"], server["source"], server["status"]) for server in listed] == [
        ("search", "discovery", "healthy")
    ]
    assert answered.text == "first"


def test_outside_a_pod_discovery_is_a_settings_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClusterCredentials.in_cluster(tmp_path, {})

    assert len(caught.value.problems) == 3
