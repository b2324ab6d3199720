"""monitoring/grafana: provisioning, and dashboards whose every query is valid PromQL on exported metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.promql import MONITORING, SCRAPE_SERIES, exported_metrics, metric_names, run_promtool

GRAFANA = MONITORING / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Grafana's variables, as a query would see them once Grafana has put in their values.
_VARIABLES = {"$service": ".*", "$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def datasource_uid() -> str:
    provisioning: dict[str, Any] = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [datasource] = provisioning["datasources"]
    assert datasource["type"] == "prometheus"
    uid: str = datasource["uid"]
    return uid


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target, variables filled in."""
    found: list[tuple[str, str]] = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expression: str = target["expr"]
            for variable, value in _VARIABLES.items():
                expression = expression.replace(variable, value)
            found.append((f"{panel['title']} / {target['refId']}", expression))
    return found


def test_the_dashboards_provider_points_where_the_dashboards_are_mounted() -> None:
    provisioning: dict[str, Any] = yaml.safe_load((GRAFANA / "provisioning/dashboards/assistant.yml").read_text())
    [provider] = provisioning["providers"]

    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert DASHBOARDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_a_dashboard_is_well_formed_and_uses_the_provisioned_datasource(path: Path) -> None:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    panels: list[dict[str, Any]] = dashboard["panels"]

    assert dashboard["uid"]
    assert dashboard["title"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    uid = datasource_uid()
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_every_dashboard_query_names_only_metrics_the_services_export(path: Path) -> None:
    exported = exported_metrics() | SCRAPE_SERIES

    unknown = {
        where: metric_names(expression) - exported for where, expression in expressions(json.loads(path.read_text()))
    }

    assert {where: names for where, names in unknown.items() if names} == {}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_every_dashboard_query_is_valid_promql(path: Path, tmp_path: Path) -> None:
    queries = expressions(json.loads(path.read_text()))
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query_{n}", "expr": expr} for n, (_, expr) in enumerate(queries)],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))

    result = run_promtool("check", "rules", "queries.yml", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboards_cover_what_operators_watch() -> None:
    covered = {
        name
        for path in DASHBOARDS
        for _, expr in expressions(json.loads(path.read_text()))
        for name in metric_names(expr)
    }

    assert {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "openai_tokens_used_total",
        "mcp_tool_calls_total",
        "mcp_tool_call_duration_seconds_bucket",
        "mcp_server_up",
        "db_pool_checked_out",
        "db_pool_capacity",
    } <= covered


def test_the_metric_name_check_would_catch_a_query_on_a_metric_nobody_exports() -> None:
    expression = 'sum by (route) (rate(http_requests_total{route="/x"}[5m])) / on(job) mcp_calls_made_total'

    assert metric_names(expression) - exported_metrics() == {"mcp_calls_made_total"}
