"""``python -m orchestrator``: invalid settings stop start-up with one clear message per problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_invalid_settings_stop_start_up_naming_each_problem(tmp_path: Path) -> None:
    env = {**os.environ, "ENVIRONMENT": "production", "PORT": "0", "JWT_SECRET_KEY": "change-me", "DATA_DIR": "x"}

    result = subprocess.run(
        [sys.executable, "-m", "orchestrator"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    problems = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("- ")]
    assert sorted(problem.split(":")[0] for problem in problems) == ["- JWT_SECRET_KEY", "- PORT"]
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
