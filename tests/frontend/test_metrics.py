"""The frontend's /metrics: its requests by route, summed over every gunicorn worker process."""

from __future__ import annotations

from pathlib import Path

import httpx
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.frontend_process import frontend_process
from tests.support.service import free_port

REQUESTS = 24


def requests_to(body: str, route: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels.get("route") == route
    )


def test_requests_are_counted_by_route_template(client: FlaskClient) -> None:
    before = requests_to(client.get("/metrics").get_data(as_text=True), "/health")

    client.get("/health")
    client.get("/health")

    after = requests_to(client.get("/metrics").get_data(as_text=True), "/health")
    assert after - before == 2


def test_metrics_are_not_shown_to_requests_an_ingress_forwarded(client: FlaskClient) -> None:
    forwarded = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7"})
    direct = client.get("/metrics")

    assert forwarded.status_code == 404
    assert "http_requests_total" not in forwarded.get_data(as_text=True)
    assert direct.status_code == 200


async def test_with_several_workers_every_scrape_reports_the_requests_of_all_of_them(tmp_path: Path) -> None:
    port = free_port()
    env = {"FRONTEND_WORKERS": "3", "FRONTEND_THREADS": "2", "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "WARNING"}
    async with frontend_process(env, tmp_path, port) as url:
        for _ in range(REQUESTS):
            # A new connection each time, so the requests spread over the workers.
            async with httpx.AsyncClient() as client:
                await client.get(url + "/health")
        scrapes: list[float] = []
        for _ in range(6):
            async with httpx.AsyncClient() as client:
                scrapes.append(requests_to((await client.get(url + "/metrics")).text, "/health"))

    # frontend_process's own readiness check also asked /health once or more before the test's requests.
    assert len(set(scrapes)) == 1
    assert scrapes[0] >= REQUESTS
