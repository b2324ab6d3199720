"""The chart's pods and ServiceMonitors as monitoring/ expects them: scraped, and labelled as alerts group."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from tests.deploy.support import CHART, REPO_ROOT, Manifest, env_of, find, load_values, render

PROMETHEUS = REPO_ROOT / "monitoring" / "prometheus"
POD_IP = "10.1.2.3"
Labels = dict[str, str]


def load(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(path.read_text()))


def alerted_jobs() -> re.Pattern[str]:
    """The jobs AssistantServiceDown watches, from its ``up{job=~"..."}``."""
    rules = [rule for group in load(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]]
    [expression] = [rule["expr"] for rule in rules if rule["alert"] == "AssistantServiceDown"]
    found = re.search(r'job=~"([^"]+)"', expression)
    assert found, expression
    return re.compile(found[1])


# --- Prometheus' relabelling, as far as these configurations use it -------------------------------------------------


def _replacement(template: str) -> str:
    """Prometheus' ``$1`` / ``${1}`` as Python's ``\\g<1>``."""
    return re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", template)


def relabel(labels: Labels, configs: list[dict[str, Any]]) -> Labels | None:
    """Apply ``relabel_configs`` (keep, drop, replace) to a target's labels; ``None`` when it is dropped."""
    labels = dict(labels)
    for config in configs:
        sources = config.get("source_labels", config.get("sourceLabels", []))
        value = config.get("separator", ";").join(labels.get(name, "") for name in sources)
        regex: str = config.get("regex", "(.*)")
        match = re.compile(regex).fullmatch(value)
        action = config.get("action", "replace")
        if action == "keep" and match is None:
            return None
        if action == "drop" and match is not None:
            return None
        if action == "replace" and match is not None:
            target = config.get("target_label", config.get("targetLabel"))
            assert target, config
            replacement: str = config.get("replacement", "$1")
            labels[target] = match.expand(_replacement(replacement))
    return labels


def _meta_name(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def pod_targets(workload: Manifest, namespace: str = "assistant") -> list[Labels]:
    """What Kubernetes pod discovery finds for a pod of ``workload``: one target per declared container port."""
    template = workload["spec"]["template"]
    meta: Labels = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": f"{workload['metadata']['name']}-0",
        "__meta_kubernetes_pod_phase": "Running",
        "__metrics_path__": "/metrics",
    }
    for name, value in template["metadata"].get("labels", {}).items():
        meta[f"__meta_kubernetes_pod_label_{_meta_name(name)}"] = value
    for name, value in template["metadata"].get("annotations", {}).items():
        meta[f"__meta_kubernetes_pod_annotation_{_meta_name(name)}"] = value
    targets = [
        {**meta, "__address__": f"{POD_IP}:{port['containerPort']}"}
        for container in template["spec"]["containers"]
        for port in container.get("ports", [])
    ]
    return targets or [{**meta, "__address__": POD_IP}]


def scraped(manifests: list[Manifest]) -> dict[str, Labels]:
    """The targets monitoring/prometheus/prometheus.yml keeps among the workloads' pods, by workload."""
    [job] = load(PROMETHEUS / "prometheus.yml")["scrape_configs"]
    kept: dict[str, Labels] = {}
    for workload in (m for m in manifests if m["kind"] in ("Deployment", "StatefulSet")):
        for target in pod_targets(workload):
            labels = relabel({**target, "job": job["job_name"]}, job["relabel_configs"])
            if labels is not None:
                kept[workload["metadata"]["name"]] = labels
    return kept


# --- the tests -------------------------------------------------------------------------------------------------------


def test_the_relabelling_here_keeps_drops_and_rewrites_as_prometheus_does() -> None:
    configs: list[dict[str, Any]] = [
        {"source_labels": ["a"], "action": "keep", "regex": "yes"},
        {
            "source_labels": ["__address__", "port"],
            "regex": r"([^:]+)(?::\d+)?;(\d+)",
            "replacement": "$1:$2",
            "target_label": "__address__",
        },
    ]

    assert relabel({"a": "yes", "__address__": "10.0.0.1:80", "port": "9000"}, configs) == {
        "a": "yes",
        "__address__": "10.0.0.1:9000",
        "port": "9000",
    }
    assert relabel({"a": "yesterday"}, configs) is None


@pytest.mark.parametrize("values_file", [None, CHART / "ci" / "scaled-values.yaml"], ids=["defaults", "scaled"])
def test_prometheus_on_kubernetes_scrapes_the_orchestrator_and_the_frontend_as_the_dashboards_name_them(
    values_file: Path | None,
) -> None:
    manifests = render(load_values(values_file))

    targets = scraped(manifests)

    assert {
        name: (labels["service"], labels["__address__"], labels["__metrics_path__"]) for name, labels in targets.items()
    } == {
        "assistant-ai-assistant-orchestrator": ("orchestrator", f"{POD_IP}:8000", "/metrics"),
        "assistant-ai-assistant-frontend": ("frontend", f"{POD_IP}:8080", "/metrics"),
    }
    for labels in targets.values():
        assert alerted_jobs().fullmatch(labels["job"])
        assert labels["namespace"] == "assistant"
        assert labels["pod"]


def test_the_scraped_port_is_the_one_the_services_and_the_network_policies_name_http() -> None:
    manifests = render()
    targets = scraped(manifests)

    for component in ("orchestrator", "frontend"):
        name = f"assistant-ai-assistant-{component}"
        container = find(manifests, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        [http] = [port for port in container["ports"] if port["name"] == "http"]
        policy = find(manifests, "NetworkPolicy", name)
        [from_prometheus] = [
            rule
            for rule in policy["spec"]["ingress"]
            if {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in rule["from"]
        ]
        assert targets[name]["__address__"].endswith(f":{http['containerPort']}")
        assert from_prometheus["ports"] == [{"port": "http"}]


def test_other_annotated_pods_of_the_cluster_are_not_the_assistant() -> None:
    stranger: Manifest = {
        "kind": "Deployment",
        "metadata": {"name": "someone-else"},
        "spec": {
            "template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/component": "api"},
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9100"},
                },
                "spec": {"containers": [{"name": "api", "ports": [{"containerPort": 9100}]}]},
            }
        },
    }

    assert scraped([stranger]) == {}


def test_without_metrics_the_pods_are_not_annotated_and_the_services_serve_none() -> None:
    manifests = render({"metrics": {"enabled": False}})

    assert scraped(manifests) == {}
    for component in ("orchestrator", "frontend"):
        container = find(manifests, "Deployment", f"assistant-ai-assistant-{component}")["spec"]["template"]["spec"][
            "containers"
        ][0]
        assert env_of(container)["METRICS_ENABLED"] == "false"


def test_service_monitors_give_the_series_the_labels_of_the_pod_job() -> None:
    manifests = render(load_values(CHART / "ci" / "scaled-values.yaml"))
    monitors = [m for m in manifests if m["kind"] == "ServiceMonitor"]
    pod_job = scraped(manifests)

    assert len(monitors) == 2
    for monitor in monitors:
        [endpoint] = monitor["spec"]["endpoints"]
        service = monitor["metadata"]["name"]
        # What the Prometheus Operator sets before the endpoint's own relabelings: the Service's name as both.
        labels = relabel({"service": service, "job": service}, endpoint["relabelings"])
        assert labels is not None
        assert labels["service"] == pod_job[service]["service"]
        assert alerted_jobs().fullmatch(labels["job"])
        assert endpoint["path"] == pod_job[service]["__metrics_path__"]


def test_compose_and_kubernetes_name_the_services_alike() -> None:
    compose = load(PROMETHEUS / "prometheus.compose.yml")
    compose_services = {job["static_configs"][0]["labels"]["service"] for job in compose["scrape_configs"]}
    compose_jobs = {job["job_name"] for job in compose["scrape_configs"]}

    assert compose_services == {labels["service"] for labels in scraped(render()).values()}
    assert all(alerted_jobs().fullmatch(job) for job in compose_jobs)
