"""Run ``python -m frontend`` (gunicorn) as a real process, as deployments do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.process import REPO_ROOT, stop_process, wait_until_answering


@asynccontextmanager
async def frontend_process(env: dict[str, str], cwd: Path, port: int) -> AsyncGenerator[str]:
    """Start the frontend on ``port`` with ``env`` (on top of ours), wait until it answers, and yield its URL."""
    process = subprocess.Popen(  # noqa: ASYNC220 - a plain child process, stopped at the end of the block
        [sys.executable, "-m", "frontend"],
        cwd=cwd,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            **env,
            "FRONTEND_HOST": "127.0.0.1",
            "FRONTEND_PORT": str(port),
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_answering(process, url + "/health", "the frontend")
        yield url
    finally:
        stop_process(process)
