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
