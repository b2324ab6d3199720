"""``make run``'s launcher really serves the UI and the API on one origin, and ``dev_token.py`` opens the API.

On that origin, as behind nginx, OpenAI clients find ``/v1`` and MCP clients ``/mcp``, with an API key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from openai import AsyncOpenAI, AuthenticationError

from tests.mcp_servers.harness import connect_http
from tests.support.process import REPO_ROOT
from tests.support.service import free_port


async def test_the_launcher_serves_the_ui_and_the_api_and_stops_both_on_sigterm(tmp_path: Path) -> None:
    frontend_port, orchestrator_port = free_port(), free_port()
    env = {
        **{key: value for key, value in os.environ.items() if key not in {"JWT_SECRET_KEY", "FRONTEND_SECRET_KEY"}},
        "PYTHONPATH": str(REPO_ROOT),
        "FRONTEND_PORT": str(frontend_port),
        "ORCHESTRATOR_PORT": str(orchestrator_port),
        "DATA_DIR": str(tmp_path / "data"),
        "MCP_BUILTIN_SERVERS": "false",
        "LOG_LEVEL": "WARNING",
    }
    launcher = subprocess.Popen(  # noqa: ASYNC220 - the process under test
        [sys.executable, str(REPO_ROOT / "scripts" / "run_local.py")], cwd=tmp_path, env=env
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{frontend_port}", timeout=5) as client:
            with anyio.fail_after(90):
                while True:
                    assert launcher.poll() is None, "the launcher exited during start-up"
                    try:
                        if (await client.get("/ready")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.1)
            login = await client.get("/login")
            anonymous_api = await client.get("/api/conversations")
        made = await anyio.run_process(
            [sys.executable, str(REPO_ROOT / "scripts" / "dev_token.py"), "admin"], cwd=tmp_path, env=env
        )
        token = made.stdout.decode().strip()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{orchestrator_port}", timeout=5) as api:
            me = await api.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            refused = await api.get("/api/me")
            made_key = await api.post(
                "/api/api-keys", json={"name": "cli"}, headers={"Authorization": f"Bearer {token}"}
            )
        key = made_key.json()["key"]
        ui_origin = f"http://127.0.0.1:{frontend_port}"
        openai_client = AsyncOpenAI(api_key=key, base_url=f"{ui_origin}/v1", max_retries=0, timeout=10)
        models = [model.id async for model in openai_client.models.list()]
        with pytest.raises(AuthenticationError):
            await AsyncOpenAI(api_key="sk-not-a-key", base_url=f"{ui_origin}/v1", max_retries=0).models.list()
        async with connect_http(f"{ui_origin}/mcp", key) as mcp_client:
            mcp_tools = {tool.name for tool in (await mcp_client.list_tools()).tools}
    finally:
        launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(timeout=30)

    assert "Local sign-in" in login.text
    assert anonymous_api.status_code == 401
    assert me.json() == {"id": "local:admin", "name": "admin", "email": None, "is_admin": True}
    assert refused.status_code == 401
    assert "assistant" in models
    assert "search_conversations" in mcp_tools
    assert code == 0
    assert (tmp_path / "data" / "dev-secrets.json").stat().st_mode & 0o077 == 0
