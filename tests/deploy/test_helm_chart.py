"""The Helm chart, offline: it lints, renders valid objects with secure defaults, and refuses the impossible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate  # pyright: ignore[reportMissingTypeStubs]
import pytest

from orchestrator.discovery.kube_api import Service
from orchestrator.discovery.services import server_config
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


def test_the_orchestrator_discovers_the_mcp_servers_the_chart_runs() -> None:
    manifests = render()
    orchestrator = find(manifests, "Deployment", "assistant-ai-assistant-orchestrator")
    env = env_of(orchestrator["spec"]["template"]["spec"]["containers"][0])
    selector = dict(term.split("=") for term in env["MCP_KUBERNETES_LABEL_SELECTOR"].split(","))
    labelled = [
        m for m in manifests if m["kind"] == "Service" and selector.items() <= m["metadata"].get("labels", {}).items()
    ]

    configs = {
        config.id: config
        for config in (server_config(Service.model_validate(service), namespace="assistant") for service in labelled)
    }

    assert env["MCP_KUBERNETES_DISCOVERY"] == "true"
    assert env["MCP_BUILTIN_SERVERS"] == "false"
    assert set(configs) == {"notes", "workspace"}
    assert configs["notes"].url == "http://assistant-ai-assistant-mcp-notes.assistant.svc:8080/mcp"
    assert (configs["notes"].send_user_id, configs["notes"].use_service_token) == (True, True)


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


def test_services_get_the_observability_and_rate_limit_settings() -> None:
    manifests = render({"tracing": {"enabled": True, "otlpEndpoint": "http://collector:4318"}})
    for component in ("orchestrator", "frontend"):
        container = find(manifests, "Deployment", f"assistant-ai-assistant-{component}")["spec"]["template"]["spec"][
            "containers"
        ][0]
        env = env_of(container)
        assert env["OTEL_ENABLED"] == "true"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
        assert env["OTEL_SERVICE_NAME"] == component
        assert {"RATE_LIMIT_ENABLED", "RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_PER_HOUR", "REDIS_URL"} <= env.keys()
        assert env["PROMETHEUS_MULTIPROC_DIR"] in {m["mountPath"] for m in container["volumeMounts"]}
        assert env["TOKEN_ENCRYPTION_KEY"]["secretKeyRef"]["key"] == "token-encryption-key"
    orchestrator = find(manifests, "Deployment", "assistant-ai-assistant-orchestrator")
    env = env_of(orchestrator["spec"]["template"]["spec"]["containers"][0])
    assert env["VECTOR_DB_URL"] == "http://assistant-ai-assistant-qdrant:6333"
    assert env["VECTOR_DB_API_KEY"]["secretKeyRef"]["name"] == "assistant-ai-assistant-qdrant"
    assert env["DATABASE_URL"] == (
        "postgresql+asyncpg://assistant:$(POSTGRES_PASSWORD)@assistant-ai-assistant-postgresql:5432/assistant"
    )


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
