"""Run ``python -m orchestrator`` as a real process, as deployments do, to kill and restart it."""

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

from tests.support.service import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60.0


@asynccontextmanager
async def orchestrator_process(env: dict[str, str], cwd: Path) -> AsyncGenerator[tuple[subprocess.Popen[bytes], str]]:
    """Start the service with ``env`` (on top of ours) and wait until it has started; yield it and its URL."""
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - a plain child process the test kills at will
        [sys.executable, "-m", "orchestrator"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env, "HOST": "127.0.0.1", "PORT": str(port)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_answering(process, url + "/health/startup", "the orchestrator")
        yield process, url
    finally:
        stop_process(process)


async def wait_until_answering(process: subprocess.Popen[bytes], url: str, what: str) -> None:
    """Wait until ``url`` answers 200, failing at once if ``process`` exits and after ``START_TIMEOUT_SECONDS``."""
    async with httpx.AsyncClient(timeout=5) as client:
        with anyio.fail_after(START_TIMEOUT_SECONDS):
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{what} exited with {process.returncode} during start-up")
                try:
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL after 20 seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
