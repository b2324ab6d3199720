"""scripts/verify_deployment.sh against a real orchestrator and frontend, asked from inside by a stand-in kubectl."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from orchestrator.memory.db import parse_database_url
from tests.orchestrator.memory.support import POSTGRES_URL
from tests.support.frontend_process import frontend_process
from tests.support.process import REPO_ROOT, orchestrator_process
from tests.support.service import free_port

pytestmark = pytest.mark.postgres

SCRIPT = REPO_ROOT / "scripts" / "verify_deployment.sh"
SECRET = "verify-deployment-test-secret-0123456789abcdef"
PREFIX = "assistant-ai-assistant"


@dataclass
class Deployed:
    orchestrator_url: str
    frontend_url: str


@pytest.fixture(scope="module")
async def deployed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployed]:
    root = tmp_path_factory.mktemp("verify")
    env = {
        "DATA_DIR": str(root / "data"),
        "MCP_BUILTIN_SERVERS": "false",
        "JWT_SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    async with orchestrator_process(env, root) as (_, orchestrator_url):
        frontend_env = {
            "ENVIRONMENT": "development",
            "DATA_DIR": str(root / "frontend"),
            "JWT_SECRET_KEY": SECRET,
            "FRONTEND_SECRET_KEY": SECRET,
            "ORCHESTRATOR_URL": orchestrator_url,
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "FRONTEND_WORKERS": "1",
            "LOG_LEVEL": "WARNING",
        }
        async with frontend_process(frontend_env, root, free_port()) as frontend_url:
            yield Deployed(orchestrator_url, frontend_url)


def pod_env(orchestrator_url: str, frontend_url: str, **variables: str) -> dict[str, str]:
    """The environment of the pods: the services' ports, as the chart sets them, and ``variables``."""
    return {
        "PORT": str(urlsplit(orchestrator_url).port),
        "FRONTEND_PORT": str(urlsplit(frontend_url).port),
        **variables,
    }


def cluster_state(deployed: Deployed, **changes: Any) -> dict[str, Any]:
    """What the stand-in kubectl reports: a healthy release unless ``changes`` say otherwise."""
    database = parse_database_url(POSTGRES_URL).render_as_string(hide_password=False)
    state: dict[str, Any] = {
        "namespace": "assistant",
        "workloads": [
            [f"Deployment/{PREFIX}-orchestrator", 1, 1],
            [f"Deployment/{PREFIX}-frontend", 2, 2],
            [f"StatefulSet/{PREFIX}-postgresql", 1, 1],
        ],
        "pods": [[f"{PREFIX}-orchestrator-abc", "Running"], [f"{PREFIX}-migrations-xyz", "Succeeded"]],
        "endpoints": [[f"{PREFIX}-orchestrator", ["10.0.0.4"]], [f"{PREFIX}-frontend", ["10.0.0.5", "10.0.0.6"]]],
        "exec_env": pod_env(
            deployed.orchestrator_url,
            deployed.frontend_url,
            DATABASE_URL=database,
            REDIS_URL="redis://127.0.0.1:6379/0",
        ),
    }
    state.update(changes)
    return state


async def verify(state: dict[str, Any], tmp_path: Path, *arguments: str) -> tuple[int, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tests.fakes.kubectl "$@"\n')
    kubectl.chmod(0o755)
    state_file = tmp_path / "cluster.json"
    state_file.write_text(json.dumps(state))
    result = await anyio.run_process(
        ["bash", str(SCRIPT), "--namespace", "assistant", "--release", "assistant", *arguments],
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "PYTHONPATH": str(REPO_ROOT),
            "FAKE_KUBECTL_STATE": str(state_file),
        },
        cwd=REPO_ROOT,
        check=False,
    )
    return result.returncode, (result.stdout + result.stderr).decode().splitlines()


def failed(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip().startswith("FAIL")]


def passed(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip().startswith("ok")]


async def test_a_healthy_release_passes_every_check_it_can_serve(deployed: Deployed, tmp_path: Path) -> None:
    code, lines = await verify(cluster_state(deployed), tmp_path)

    ok = "\n".join(passed(lines))
    for check in (
        f"Deployment/{PREFIX}-orchestrator ready (1/1)",
        f"Deployment/{PREFIX}-frontend ready (2/2)",
        "no pod is failing",
        f"{PREFIX}-frontend has 2 endpoint(s)",
        "orchestrator /health/ready",
        "orchestrator /health/detailed (degraded: database up, model not configured, MCP servers: none)",
        "frontend /ready",
        "orchestrator /metrics",
        "frontend /metrics",
        "DATABASE_URL reachable (127.0.0.1:5432)",
        "REDIS_URL reachable (127.0.0.1:6379)",
    ):
        assert check in ok
    assert failed(lines) == []
    assert code == 0


async def test_every_broken_part_is_reported_and_fails_the_run(deployed: Deployed, tmp_path: Path) -> None:
    state = cluster_state(
        deployed,
        workloads=[[f"Deployment/{PREFIX}-orchestrator", "", 2], [f"Deployment/{PREFIX}-frontend", 1, 1]],
        pods=[[f"{PREFIX}-orchestrator-abc", "Pending"]],
        endpoints=[[f"{PREFIX}-orchestrator", []]],
        exec_env=pod_env(
            deployed.orchestrator_url,
            "http://127.0.0.1:9",
            DATABASE_URL="postgresql://u@127.0.0.1:9/x",
            REDIS_URL="redis://127.0.0.1:9/0",
        ),
    )

    code, lines = await verify(state, tmp_path)

    problems = "\n".join(failed(lines))
    assert code == 1
    for problem in (
        f"Deployment/{PREFIX}-orchestrator ready (0/2)",
        f"pods not running: {PREFIX}-orchestrator-abc Pending",
        f"{PREFIX}-orchestrator has no endpoint",
        "frontend /ready",
        "frontend /metrics",
        "DATABASE_URL unreachable: 127.0.0.1:9",
        "REDIS_URL unreachable: 127.0.0.1:9",
    ):
        assert problem in problems
    assert f"Deployment/{PREFIX}-frontend ready (1/1)" in "\n".join(passed(lines))


async def test_an_unreachable_cluster_fails_at_once(deployed: Deployed, tmp_path: Path) -> None:
    code, lines = await verify(cluster_state(deployed, namespace="elsewhere"), tmp_path)

    assert code == 1
    assert len(failed(lines)) == 1


async def test_help_and_unknown_arguments(tmp_path: Path) -> None:
    shown = await anyio.run_process(["bash", str(SCRIPT), "--help"], check=False)
    refused = await anyio.run_process(["bash", str(SCRIPT), "--frobnicate"], check=False)

    assert shown.returncode == 0
    assert b"--namespace NS" in shown.stdout
    assert refused.returncode == 2
