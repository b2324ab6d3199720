"""monitoring/prometheus: the scrape configurations and the alert rules, checked and unit-tested with promtool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.monitoring.promql import MONITORING, SCRAPE_SERIES, exported_metrics, metric_names, run_promtool

PROMETHEUS = MONITORING / "prometheus"


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_the_compose_configuration_is_valid() -> None:
    result = run_promtool("check", "config", "prometheus.compose.yml", cwd=PROMETHEUS)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_kubernetes_configuration_is_valid_and_scrapes_pods_by_annotation(tmp_path: Path) -> None:
    config = load(PROMETHEUS / "prometheus.yml")
    [job] = config["scrape_configs"]
    relabels: list[dict[str, Any]] = job["relabel_configs"]

    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    assert {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        "action": "keep",
        "regex": "true",
    } in relabels
    targets = {relabel.get("target_label") for relabel in relabels}
    assert {"__metrics_path__", "__address__", "service", "namespace", "pod"} <= targets
    # Debian's Prometheus is built without Kubernetes discovery: check everything else with a static job instead.
    job.pop("kubernetes_sd_configs")
    job["static_configs"] = [{"targets": ["orchestrator:8000"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "alerts.yml").write_text((PROMETHEUS / "alerts.yml").read_text())
    result = run_promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_are_valid() -> None:
    result = run_promtool("check", "rules", "alerts.yml", cwd=PROMETHEUS)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_unit_tests() -> None:
    result = run_promtool("test", "rules", "alerts.test.yml", cwd=PROMETHEUS)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_operators_need_exist_and_each_has_a_unit_test() -> None:
    rules = [rule for group in load(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]]
    tested = {
        test["alertname"]
        for case in load(PROMETHEUS / "alerts.test.yml")["tests"]
        for test in case.get("alert_rule_test", [])
    }

    names = {rule["alert"] for rule in rules}
    assert names == {
        "AssistantServiceDown",
        "AssistantHighErrorRate",
        "AssistantHighLatency",
        "McpServerDown",
        "DatabasePoolCritical",
        "DatabasePoolWarning",
        "TokenSpendSpike",
    }
    assert tested == names


def test_every_alert_names_only_metrics_the_services_export() -> None:
    exported = exported_metrics() | SCRAPE_SERIES
    rules = [rule for group in load(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]]

    unknown = {rule["alert"]: metric_names(rule["expr"]) - exported for rule in rules}

    assert {alert: names for alert, names in unknown.items() if names} == {}
