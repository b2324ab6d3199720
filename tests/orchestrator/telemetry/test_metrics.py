"""GET /metrics after real turns: requests by route template, model tokens and latency, tool calls, servers, pool."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.memory.db import PoolStatus
from orchestrator.telemetry.dbpool import assess
from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.orchestrator.api.conftest import SettingsFactory
from tests.support.service import Service, running_service
from tests.support.turns import json_turn, new_conversation, stream_turn

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(service: Service) -> Samples:
    response = await service.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.parametrize("header", ["X-Forwarded-For", "X-Real-IP", "Forwarded"])
async def test_metrics_are_not_shown_to_requests_a_proxy_forwarded(service: Service, header: str) -> None:
    forwarded = await service.client.get("/metrics", headers={header: "for=203.0.113.7"})
    direct = await service.client.get("/metrics")

    assert forwarded.status_code == 404
    assert direct.status_code == 200


async def test_a_turn_with_a_tool_call_is_counted_by_route_model_tool_and_server(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(tool_calls([("test__echo", {"text": "ping"})]), text("The tool said ping."))
    conversation = await new_conversation(service.client)
    before = await scrape(service)

    reply = await json_turn(service.client, conversation, "Echo ping")
    after = await scrape(service)

    route = "/api/conversations/{conversation_id}/messages"
    request = {"method": "POST", "route": route, "status": "200"}
    assert value(after, "http_requests_total", **request) - value(before, "http_requests_total", **request) == 1
    assert value(after, "http_request_duration_seconds_count", **request) > 0
    prompt = {"model": "fake-gpt", "type": "prompt"}
    completion = {"model": "fake-gpt", "type": "completion"}
    assert (
        value(after, "openai_tokens_used_total", **prompt) - value(before, "openai_tokens_used_total", **prompt)
        == reply["prompt_tokens"]
    )
    assert (
        value(after, "openai_tokens_used_total", **completion) - value(before, "openai_tokens_used_total", **completion)
        == reply["completion_tokens"]
    )
    ok_model = {"model": "fake-gpt", "outcome": "ok"}
    assert (
        value(after, "llm_request_duration_seconds_count", **ok_model)
        - value(before, "llm_request_duration_seconds_count", **ok_model)
        == 2
    )
    call = {"server": "test", "tool": "echo", "outcome": "ok"}
    assert value(after, "mcp_tool_calls_total", **call) - value(before, "mcp_tool_calls_total", **call) == 1
    assert value(after, "mcp_tool_call_duration_seconds_count", **call) >= 1
    assert value(after, "mcp_server_up", server="test") == 1
    assert value(after, "db_pool_capacity") >= 1
    assert ("active_streams", frozenset()) in after


async def test_tool_errors_and_unknown_routes_have_their_own_labels(service: Service, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls([("test__fail", {})]), text("It failed."))
    await stream_turn(service.client, await new_conversation(service.client), "fail please")
    await service.client.get("/no/such/page")

    samples = await scrape(service)

    assert value(samples, "mcp_tool_calls_total", server="test", tool="fail", outcome="tool_error") >= 1
    assert value(samples, "http_requests_total", method="GET", route="unmatched", status="404") >= 1
    # Conversation ids never become labels: one series per route template.
    routes = {
        value for name, labels in samples for key, value in labels if name == "http_requests_total" and key == "route"
    }
    assert "/api/conversations/{conversation_id}/messages" in routes
    assert not any(UUID.search(route) for route in routes)


async def test_a_stopped_server_is_reported_down(make_settings: SettingsFactory) -> None:
    settings = make_settings({"gone": {"url": "http://127.0.0.1:9/mcp", "timeout": 1}})
    async with running_service(settings) as service:
        samples = await scrape(service)

    assert value(samples, "mcp_server_up", server="gone") == 0


async def test_metrics_can_be_turned_off(make_settings: SettingsFactory) -> None:
    async with running_service(make_settings(metrics_enabled=False)) as service:
        assert (await service.client.get("/metrics")).status_code == 404


async def test_the_pool_status_reports_its_thresholds(service: Service) -> None:
    response = await service.client.get("/api/monitoring/db-pool-status")

    body = response.json()
    # SQLite has one connection: whether another request holds it at this moment is not ours to pin down, so the
    # status must be the one its own figures give.
    figures = PoolStatus("sqlite", body["size"], body["checked_out"], body["overflow"], body["capacity"])
    assert response.status_code == 200
    assert (body["backend"], body["capacity"]) == ("sqlite", 1)
    assert body["status"] == assess(figures).health
    assert (body["warning_threshold"], body["critical_threshold"]) == (0.7, 0.9)


@pytest.mark.parametrize(
    ("checked_out", "health"),
    [(0, "healthy"), (20, "healthy"), (21, "warning"), (26, "warning"), (27, "critical"), (30, "critical")],
)
def test_pool_health_is_warning_from_70_and_critical_from_90_percent_of_capacity(checked_out: int, health: str) -> None:
    report = assess(PoolStatus("postgresql", size=10, checked_out=checked_out, overflow=0, capacity=30))

    assert report.health == health
    assert report.utilization == round(checked_out / 30, 4)
