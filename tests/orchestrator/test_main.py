"""``python -m orchestrator``: invalid settings stop start-up with one clear message per problem; several workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.process import orchestrator_process
from tests.support.redis import SHARED_REDIS_URL

REQUESTS = 24


def test_invalid_settings_stop_start_up_naming_each_problem(tmp_path: Path) -> None:
    env = {**os.environ, "ENVIRONMENT": "production", "PORT": "0", "JWT_SECRET_KEY": "change-me", "DATA_DIR": "x"}

    result = subprocess.run(
        [sys.executable, "-m", "orchestrator"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    problems = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("- ")]
    assert sorted(problem.split(":")[0] for problem in problems) == [
        "- JWT_SECRET_KEY",
        "- PORT",
        "- TOKEN_ENCRYPTION_KEY",
    ]
    assert not (tmp_path / "x").exists()


def test_a_broken_servers_file_stops_start_up_naming_each_problem(tmp_path: Path) -> None:
    servers = tmp_path / "servers.json"
    servers.write_text(
        '{"mcpServers": {"a": {"args": ["x"]}, "b": {"url": "ftp://nope"}, "c": {"command": "x", "tyop": 1}}}'
    )
    env = {**os.environ, "MCP_CONFIG": str(servers), "DATA_DIR": str(tmp_path / "data")}

    result = subprocess.run(
        [sys.executable, "-m", "orchestrator"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    problems = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("- ")]
    assert result.returncode == 2
    assert len(problems) == 3
    assert all(any(f"mcpServers.{name}" in problem for problem in problems) for name in "abc")


def test_several_workers_without_redis_are_refused(tmp_path: Path) -> None:
    env = {**os.environ, "WORKERS": "2", "DATA_DIR": str(tmp_path / "data")}
    env.pop("REDIS_URL", None)

    result = subprocess.run(
        [sys.executable, "-m", "orchestrator"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert "- WORKERS: more than one worker needs REDIS_URL" in result.stderr


async def test_with_several_workers_every_scrape_reports_the_requests_of_all_of_them(
    tmp_path: Path, redis_prefix: str
) -> None:
    env = {
        "WORKERS": "3",
        "REDIS_URL": SHARED_REDIS_URL,
        "REDIS_KEY_PREFIX": redis_prefix,
        "DATA_DIR": str(tmp_path / "data"),
        "MCP_BUILTIN_SERVERS": "false",
        "MEMORY_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    async with orchestrator_process(env, tmp_path) as (_, url):
        for _ in range(REQUESTS):
            # A new connection each time, so the requests spread over the workers.
            async with httpx.AsyncClient() as client:
                assert (await client.get(url + "/api/me")).status_code == 200
        scrapes: list[float] = []
        for _ in range(6):
            async with httpx.AsyncClient() as client:
                body = (await client.get(url + "/metrics")).text
            scrapes.append(
                sum(
                    sample.value
                    for family in text_string_to_metric_families(body)
                    for sample in family.samples
                    if sample.name == "http_requests_total" and sample.labels.get("route") == "/api/me"
                )
            )

    assert scrapes == [REQUESTS] * 6


def test_kubernetes_discovery_outside_a_pod_stops_start_up_saying_why(tmp_path: Path) -> None:
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("KUBERNETES_")},
        "MCP_KUBERNETES_DISCOVERY": "true",
        "MCP_KUBERNETES_SERVICE_ACCOUNT_DIR": str(tmp_path / "no-account"),
        "DATA_DIR": str(tmp_path / "data"),
    }

    result = subprocess.run(
        [sys.executable, "-m", "orchestrator"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    problems = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("- ")]
    assert result.returncode == 2
    assert len(problems) == 3
    assert all(problem.startswith("- MCP_KUBERNETES_DISCOVERY:") for problem in problems)
