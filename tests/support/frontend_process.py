"""Run ``python -m frontend`` (gunicorn) as a real process, as deployments do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx

from tests.support.process import REPO_ROOT

START_TIMEOUT_SECONDS = 60.0


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
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            with anyio.fail_after(START_TIMEOUT_SECONDS):
                while True:
                    if process.poll() is not None:
                        raise RuntimeError(f"the frontend exited with {process.returncode} during start-up")
                    try:
                        if (await client.get("/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.05)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
