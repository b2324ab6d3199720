"""The Helm chart, offline: it lints, renders valid objects with secure defaults, and refuses the impossible."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate  # pyright: ignore[reportMissingTypeStubs]
import pytest

from orchestrator.discovery.kube_api import Service
from orchestrator.discovery.services import server_config
from orchestrator.mcp.types import ServerConfig
from tests.deploy.support import (
    CHART,
    CI_VALUES,
    KUBERNETES_VERSIONS,
    Manifest,
    env_of,
    find,
    load_values,
    pod_specs,
    render,
    run_script,
    unread_variables,
)

VALUE_FILES = [None, *CI_VALUES]
VALUE_IDS = ["defaults", *(path.stem for path in CI_VALUES)]
CUSTOM_RESOURCES = {"monitoring.coreos.com/v1": {"ServiceMonitor"}}


@pytest.fixture(scope="module", params=VALUE_FILES, ids=VALUE_IDS)
def rendered(request: pytest.FixtureRequest) -> list[Manifest]:
    path: Path | None = request.param
    return render(load_values(path))


def test_there_are_example_values_to_check() -> None:
    assert len(CI_VALUES) >= 3


@pytest.mark.parametrize("values_file", VALUE_FILES, ids=VALUE_IDS)
def test_the_chart_lints_without_warnings(values_file: Path | None) -> None:
    report = helm.lint(CHART, load_values(values_file), strict=True, namespace="assistant")

    problems = [message for message in report["messages"] if message["severity"] >= 2]
    assert (problems, report["errors"]) == ([], [])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_validates_against_the_kubernetes_schema(rendered: list[Manifest], version: str) -> None:
    invalid: list[str] = []
    for manifest in rendered:
        if manifest["kind"] in CUSTOM_RESOURCES.get(manifest["apiVersion"], set()):
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            invalid.append(f"{manifest['kind']} {manifest['metadata']['name']}: {exc.message} at {list(exc.path)}")

    assert invalid == []


def test_service_monitors_select_the_services_they_scrape(rendered: list[Manifest]) -> None:
    services = {m["metadata"]["name"]: m for m in rendered if m["kind"] == "Service"}
    for monitor in (m for m in rendered if m["kind"] == "ServiceMonitor"):
        wanted = monitor["spec"]["selector"]["matchLabels"]
        matching = [s for s in services.values() if wanted.items() <= s["metadata"]["labels"].items()]
        assert len(matching) == 1
        assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in matching[0]["spec"]["ports"]}


def test_every_pod_runs_unprivileged_with_a_read_only_root(rendered: list[Manifest]) -> None:
    checked = 0
    for name, spec in pod_specs(rendered):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "resources" in container, name
            checked += 1
    assert checked >= 3


def test_only_the_orchestrator_mounts_a_service_account_token(rendered: list[Manifest]) -> None:
    mounting = {name for name, spec in pod_specs(rendered) if spec.get("automountServiceAccountToken", True)}

    assert mounting <= {"assistant-ai-assistant-orchestrator"}


def test_long_running_services_have_probes_on_their_health_endpoints() -> None:
    manifests = render()
    orchestrator = find(manifests, "Deployment", "assistant-ai-assistant-orchestrator")["spec"]["template"]["spec"]
    frontend = find(manifests, "Deployment", "assistant-ai-assistant-frontend")["spec"]["template"]["spec"]

    def paths(container: Manifest) -> dict[str, str]:
        return {probe: container[probe]["httpGet"]["path"] for probe in container if probe.endswith("Probe")}

    assert paths(orchestrator["containers"][0]) == {
        "startupProbe": "/health/startup",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    assert paths(frontend["containers"][0]) == {"livenessProbe": "/health", "readinessProbe": "/ready"}


def test_secrets_reach_the_pods_only_by_reference(rendered: list[Manifest]) -> None:
    secret_like = ("SECRET", "PASSWORD", "TOKEN", "API_KEY")
    for name, spec in pod_specs(rendered):
        for container in spec["containers"]:
            for variable, value in env_of(container).items():
                if any(marker in variable for marker in secret_like) and variable != "OTEL_SERVICE_NAME":
                    assert isinstance(value, dict), f"{name}: {variable} is written in the manifest"
                    assert "secretKeyRef" in value, f"{name}: {variable} does not come from a Secret"


def test_generated_secrets_are_random_and_kept_on_uninstall() -> None:
    first = [m for m in render() if m["kind"] == "Secret"]
    second = [m for m in render() if m["kind"] == "Secret"]

    assert {m["metadata"]["name"] for m in first} == {
        "assistant-ai-assistant",
        "assistant-ai-assistant-postgresql",
        "assistant-ai-assistant-redis",
        "assistant-ai-assistant-qdrant",
    }
    assert all(m["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for m in first)
    assert [m["data"] for m in first] != [m["data"] for m in second]


def test_no_secret_is_generated_when_all_are_named() -> None:
    values = load_values(CHART / "ci" / "external-services-values.yaml")

    assert [m for m in render(values) if m["kind"] == "Secret"] == []


def discovered(manifests: list[Manifest]) -> dict[str, ServerConfig]:
    """The MCP servers the orchestrator finds among the Services its label selector picks, by id."""
    orchestrator = find(manifests, "Deployment", "assistant-ai-assistant-orchestrator")
    env = env_of(orchestrator["spec"]["template"]["spec"]["containers"][0])
    selector = dict(term.split("=") for term in env["MCP_KUBERNETES_LABEL_SELECTOR"].split(","))
    labelled = [
        m for m in manifests if m["kind"] == "Service" and selector.items() <= m["metadata"].get("labels", {}).items()
    ]
    return {
        config.id: config
        for config in (server_config(Service.model_validate(service), namespace="assistant") for service in labelled)
    }


def test_the_orchestrator_discovers_the_mcp_servers_the_chart_runs() -> None:
    manifests = render()
    orchestrator = find(manifests, "Deployment", "assistant-ai-assistant-orchestrator")
    env = env_of(orchestrator["spec"]["template"]["spec"]["containers"][0])

    configs = discovered(manifests)

    assert env["MCP_KUBERNETES_DISCOVERY"] == "true"
    assert env["MCP_BUILTIN_SERVERS"] == "false"
    assert set(configs) == {"notes", "workspace"}
    assert configs["notes"].url == "http://assistant-ai-assistant-mcp-notes.assistant.svc:8080/mcp"
    assert (configs["notes"].send_user_id, configs["notes"].use_service_token) == (True, True)


def test_a_servers_limit_of_calls_at_once_in_the_values_reaches_discovery() -> None:
    configs = discovered(render(load_values(CHART / "ci" / "scaled-values.yaml")))

    assert configs["everything"].max_concurrent_calls == 8
    assert configs["notes"].max_concurrent_calls is None


def test_discovery_may_only_read_services_in_its_namespace() -> None:
    manifests = render()
    role = find(manifests, "Role", "assistant-ai-assistant-discovery")
    binding = find(manifests, "RoleBinding", "assistant-ai-assistant-discovery")

    assert role["rules"] == [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]}]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "assistant-ai-assistant", "namespace": "assistant"}
    ]
    assert not [m for m in manifests if m["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_the_migrations_job_runs_before_upgrades_and_after_a_first_install_with_bundled_postgres() -> None:
    bundled = find(render(), "Job", "assistant-ai-assistant-migrations")
    external = find(
        render(load_values(CHART / "ci" / "external-services-values.yaml")), "Job", "assistant-ai-assistant-migrations"
    )

    assert bundled["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    assert external["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    command = bundled["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["python", "scripts/init_db.py"]


def test_extra_environment_reaches_the_services() -> None:
    values: dict[str, Any] = {
        "orchestrator": {
            "config": {"MAX_TOOL_ITERATIONS": "12"},
            "extraEnv": [{"name": "FUTURE_SETTING", "value": "on"}],
            "extraEnvFrom": [{"secretRef": {"name": "more"}}],
        },
        "frontend": {"extraEnv": [{"name": "FUTURE_UI_SETTING", "value": "1"}]},
    }
    manifests = render(values)
    orchestrator = find(manifests, "Deployment", "assistant-ai-assistant-orchestrator")["spec"]["template"]["spec"]
    frontend = find(manifests, "Deployment", "assistant-ai-assistant-frontend")["spec"]["template"]["spec"]

    assert env_of(orchestrator["containers"][0])["MAX_TOOL_ITERATIONS"] == "12"
    assert env_of(orchestrator["containers"][0])["FUTURE_SETTING"] == "on"
    assert orchestrator["containers"][0]["envFrom"] == [{"secretRef": {"name": "more"}}]
    assert env_of(frontend["containers"][0])["FUTURE_UI_SETTING"] == "1"


def container_of(manifests: list[Manifest], component: str) -> Manifest:
    deployment = find(manifests, "Deployment", f"assistant-ai-assistant-{component}")
    container: Manifest = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_services_get_the_observability_and_rate_limit_settings() -> None:
    manifests = render({"tracing": {"enabled": True, "otlpEndpoint": "http://collector:4318"}})
    orchestrator, frontend = (
        env_of(container_of(manifests, "orchestrator")),
        env_of(container_of(manifests, "frontend")),
    )

    for env in (orchestrator, frontend):
        assert env["OTEL_ENABLED"] == "true"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
        assert env["METRICS_ENABLED"] == "true"
        assert env["REDIS_URL"] == "redis://:$(REDIS_PASSWORD)@assistant-ai-assistant-redis:6379/0"
        assert env["PUBLIC_URL"] == "https://assistant.example.com"
    assert (orchestrator["OTEL_SERVICE_NAME"], frontend["FRONTEND_OTEL_SERVICE_NAME"]) == ("orchestrator", "frontend")
    assert {
        "RATE_LIMIT_ENABLED",
        "RATE_LIMIT_PER_MINUTE",
        "RATE_LIMIT_PER_HOUR",
        "TRUSTED_PROXIES",
    } <= orchestrator.keys()
    assert orchestrator["TOKEN_ENCRYPTION_KEY"]["secretKeyRef"]["key"] == "token-encryption-key"
    assert "TOKEN_ENCRYPTION_KEY" not in frontend
    assert orchestrator["VECTOR_DB_URL"] == "http://assistant-ai-assistant-qdrant:6333"
    assert orchestrator["VECTOR_DB_API_KEY"]["secretKeyRef"]["name"] == "assistant-ai-assistant-qdrant"
    assert orchestrator["DATABASE_URL"] == (
        "postgresql+asyncpg://assistant:$(POSTGRES_PASSWORD)@assistant-ai-assistant-postgresql:5432/assistant"
    )
    assert (orchestrator["MEMORY_ENABLED"], orchestrator["EMBEDDINGS_THREADS"], orchestrator["WORKERS"]) == (
        "true",
        "1",
        "1",
    )


def test_a_redis_outside_the_release_gets_keys_of_the_release_own() -> None:
    external = render(load_values(CHART / "ci" / "external-services-values.yaml"), name="chat")
    chosen = render(
        {
            **(load_values(CHART / "ci" / "external-services-values.yaml") or {}),
            "externalRedis": {"host": "redis.databases.svc", "keyPrefix": "team-a:"},
        },
        name="chat",
    )
    bundled = render()

    def prefix(manifests: list[Manifest]) -> str | None:
        containers = [m["spec"]["template"]["spec"]["containers"][0] for m in manifests if m["kind"] == "Deployment"]
        [orchestrator] = [c for c in containers if c["name"] == "orchestrator"]
        value: str | None = env_of(orchestrator).get("REDIS_KEY_PREFIX")
        return value

    assert (prefix(external), prefix(chosen), prefix(bundled)) == ("chat:", "team-a:", None)


@pytest.mark.parametrize(
    ("component", "workers"), [("orchestrator", 1), ("orchestrator", 3), ("frontend", 1), ("frontend", 2)]
)
def test_several_worker_processes_add_up_their_metrics_in_a_writable_directory_of_the_pod(
    component: str, workers: int
) -> None:
    deployment = find(render({component: {"workers": workers}}), "Deployment", f"assistant-ai-assistant-{component}")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = env_of(container)

    if workers == 1:
        assert "PROMETHEUS_MULTIPROC_DIR" not in env
        return
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == env["PROMETHEUS_MULTIPROC_DIR"]]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume
    assert not mount.get("readOnly", False)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_network_policies_admit_only_the_components_that_need_each_store() -> None:
    manifests = render()
    postgres = find(manifests, "NetworkPolicy", "assistant-ai-assistant-postgresql")
    peers = postgres["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"]

    assert {
        "key": "app.kubernetes.io/component",
        "operator": "In",
        "values": ["orchestrator", "migrations", "backup"],
    } in peers
    assert len([m for m in manifests if m["kind"] == "NetworkPolicy"]) == 6


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"postgresql": {"enabled": False}}, id="no-database"),
        pytest.param(
            {"postgresql": {"enabled": False}, "externalDatabase": {"host": "db"}},
            id="external-database-without-secret",
        ),
        pytest.param({"externalDatabase": {"host": "db", "existingSecret": "db"}}, id="two-databases"),
        pytest.param({"redis": {"enabled": True}, "externalRedis": {"host": "r"}}, id="two-redis"),
        pytest.param({"ingress": {"enabled": False}}, id="production-without-public-url"),
        pytest.param({"redis": {"enabled": False}}, id="frontend-replicas-without-redis"),
        pytest.param(
            {"orchestrator": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}}, id="min-over-max"
        ),
        pytest.param(
            {"mcpServers": {"servers": [{"name": "a", "enabled": True}, {"name": "a", "enabled": True}]}},
            id="duplicate-servers",
        ),
        pytest.param({"discovery": {"enabled": False}}, id="servers-without-discovery"),
        pytest.param(
            {"redis": {"enabled": False}, "frontend": {"replicaCount": 1}, "orchestrator": {"workers": 2}},
            id="orchestrator-workers-without-redis",
        ),
        pytest.param(
            {
                "redis": {"enabled": False},
                "frontend": {"replicaCount": 1},
                "orchestrator": {"autoscaling": {"enabled": True, "minReplicas": 1}},
            },
            id="orchestrator-autoscaling-without-redis",
        ),
        pytest.param({"tracing": {"enabled": True}}, id="tracing-without-a-collector"),
        pytest.param(
            {"qdrant": {"enabled": False}, "orchestrator": {"replicaCount": 2}}, id="embedded-memory-replicas"
        ),
        pytest.param({"qdrant": {"enabled": False}, "orchestrator": {"workers": 2}}, id="embedded-memory-workers"),
        pytest.param(
            {"qdrant": {"enabled": False}, "orchestrator": {"autoscaling": {"enabled": True}}},
            id="embedded-memory-autoscaling",
        ),
    ],
)
def test_impossible_values_fail_with_a_message(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmRenderError) as caught:
        render(values)

    assert "ai-assistant: " in str(caught.value)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"environment": "staging"}, id="unknown-environment"),
        pytest.param({"orchestrator": {"replicaCount": "two"}}, id="not-a-number"),
        pytest.param({"orchestratr": {}}, id="misspelt-key"),
        pytest.param({"mcpServers": {"servers": [{"name": "Has_Capitals", "enabled": True}]}}, id="bad-server-name"),
        pytest.param({"ingress": {"hosts": ["https://chat.example.com"]}}, id="url-as-host"),
        pytest.param({"backup": {"schedule": "nightly"}}, id="bad-schedule"),
    ],
)
def test_the_values_schema_refuses_wrong_types_and_typos(values: dict[str, Any]) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


def test_every_value_is_documented_and_the_reference_in_the_docs_is_current() -> None:
    check = run_script("scripts/helm_values_reference.py", "--check")

    assert (check.returncode, check.stderr) == (0, "")


# --- long-term memory -----------------------------------------------------------------------------------------------


def test_without_a_qdrant_server_memories_live_on_a_volume_of_the_one_orchestrator_pod() -> None:
    manifests = render({"qdrant": {"enabled": False}})
    deployment = find(manifests, "Deployment", "assistant-ai-assistant-orchestrator")
    pod = deployment["spec"]["template"]["spec"]
    env = env_of(pod["containers"][0])
    claim = find(manifests, "PersistentVolumeClaim", "assistant-ai-assistant-orchestrator")

    [data] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "data"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "data"]
    assert "VECTOR_DB_URL" not in env
    assert data["mountPath"] == env["DATA_DIR"]
    assert volume == {"name": "data", "persistentVolumeClaim": {"claimName": "assistant-ai-assistant-orchestrator"}}
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({}, id="bundled-qdrant"),
        pytest.param({"qdrant": {"enabled": False}, "memory": {"enabled": False}}, id="memory-off"),
        pytest.param(
            {"qdrant": {"enabled": False}, "orchestrator": {"persistence": {"enabled": False}}}, id="no-volume"
        ),
    ],
)
def test_the_orchestrator_keeps_no_volume_when_its_memories_are_elsewhere_or_not_kept(values: dict[str, Any]) -> None:
    manifests = render(values)
    pod = find(manifests, "Deployment", "assistant-ai-assistant-orchestrator")["spec"]["template"]["spec"]

    [volume] = [v for v in pod["volumes"] if v["name"] == "data"]
    assert volume == {"name": "data", "emptyDir": {}}
    assert not [
        m for m in manifests if m["kind"] == "PersistentVolumeClaim" and "orchestrator" in m["metadata"]["name"]
    ]


def test_an_existing_claim_holds_the_embedded_memories() -> None:
    manifests = render({"qdrant": {"enabled": False}, "orchestrator": {"persistence": {"existingClaim": "memories"}}})
    pod = find(manifests, "Deployment", "assistant-ai-assistant-orchestrator")["spec"]["template"]["spec"]

    assert {"name": "data", "persistentVolumeClaim": {"claimName": "memories"}} in pod["volumes"]
    assert not [
        m for m in manifests if m["kind"] == "PersistentVolumeClaim" and "orchestrator" in m["metadata"]["name"]
    ]


# --- network policies: egress ----------------------------------------------------------------------------------------


def egress_ports(policy: Manifest) -> set[int]:
    """Ports the policy lets its pods reach at any address (rules without ``to``)."""
    return {port["port"] for rule in policy["spec"]["egress"] if "to" not in rule for port in rule.get("ports", [])}


def test_the_orchestrator_may_reach_what_it_calls_and_nothing_else() -> None:
    default = find(render(), "NetworkPolicy", "assistant-ai-assistant-orchestrator")
    external = find(
        render(load_values(CHART / "ci" / "external-services-values.yaml")),
        "NetworkPolicy",
        "assistant-ai-assistant-orchestrator",
    )

    assert default["spec"]["policyTypes"] == ["Ingress", "Egress"]
    # DNS; HTTPS anywhere (the model, MCP servers and their authorization servers); the Kubernetes API (discovery).
    assert egress_ports(default) == {53, 443, 6443}
    # The namespace's pods: the bundled PostgreSQL, Redis and Qdrant, and the MCP servers discovery finds.
    assert {"to": [{"podSelector": {}}]} in default["spec"]["egress"]
    # PostgreSQL, Redis, Qdrant and the tracing collector outside the release, on their own ports.
    assert egress_ports(external) == {53, 443, 6443, 5432, 6379, 6333, 4318}


def test_the_frontend_may_reach_the_namespace_sign_in_providers_and_the_collector() -> None:
    external = find(
        render(load_values(CHART / "ci" / "external-services-values.yaml")),
        "NetworkPolicy",
        "assistant-ai-assistant-frontend",
    )

    assert {"to": [{"podSelector": {}}]} in external["spec"]["egress"]
    assert egress_ports(external) == {53, 443, 6379, 4318}


def test_egress_may_be_left_open_or_widened() -> None:
    opened = render({"networkPolicy": {"allowExternalEgress": True}})
    rule = {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"port": 3000, "protocol": "TCP"}]}
    widened = render({"networkPolicy": {"extraEgress": [rule]}})

    for component in ("orchestrator", "frontend"):
        policy = find(opened, "NetworkPolicy", f"assistant-ai-assistant-{component}")
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert "egress" not in policy["spec"]
        assert rule in find(widened, "NetworkPolicy", f"assistant-ai-assistant-{component}")["spec"]["egress"]


# --- the services accept what the chart gives them ------------------------------------------------------------------


def resolved_env(container: Manifest) -> dict[str, str]:
    """A container's environment as Kubernetes would give it: Secrets read (as random values), $(VAR) expanded."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "valueFrom" in item:
            env[item["name"]] = secrets.token_urlsafe(36)
        else:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda match: env.get(match[1], match[0]), item["value"])
    return env


@pytest.mark.parametrize("values_file", VALUE_FILES, ids=VALUE_IDS)
def test_each_service_accepts_its_environment_and_reads_every_variable_of_it(
    values_file: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(load_values(values_file))
    orchestrator = resolved_env(container_of(manifests, "orchestrator"))
    frontend = resolved_env(container_of(manifests, "frontend"))

    assert unread_variables(orchestrator, frontend, monkeypatch) == {"orchestrator": set(), "frontend": set()}


# --- other clients: /v1/ and /mcp ------------------------------------------------------------------------------------


def test_the_ingress_sends_v1_and_mcp_to_the_orchestrator_and_pages_to_the_frontend() -> None:
    manifests = render()
    [rule] = find(manifests, "Ingress", "assistant-ai-assistant")["spec"]["rules"]
    routes = {(path["path"], path["pathType"]): path["backend"]["service"]["name"] for path in rule["http"]["paths"]}
    policy = find(manifests, "NetworkPolicy", "assistant-ai-assistant-orchestrator")
    admitted = policy["spec"]["ingress"][0]["from"]

    assert routes == {
        ("/v1/", "Prefix"): "assistant-ai-assistant-orchestrator",
        ("/mcp", "Exact"): "assistant-ai-assistant-orchestrator",
        ("/", "Prefix"): "assistant-ai-assistant-frontend",
    }
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in admitted


def test_without_an_ingress_the_orchestrator_admits_no_ingress_controller() -> None:
    values = {"ingress": {"enabled": False}, "frontend": {"publicUrl": "https://chat.example.com"}}
    policy = find(render(values), "NetworkPolicy", "assistant-ai-assistant-orchestrator")

    selectors = [peer.get("namespaceSelector") for peer in policy["spec"]["ingress"][0]["from"]]
    assert {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}} not in selectors
