"""Run the whole assistant on one machine: the orchestrator, then the frontend in front of it on one origin.

``make run`` calls this. The browser talks only to the frontend (``FRONTEND_PORT``, 8000 here); the frontend serves the
UI and forwards ``/api/`` to the orchestrator, which listens on loopback (``ORCHESTRATOR_PORT``, 8001). Ctrl-C stops
both; if either exits, the other is stopped too.

Without ``JWT_SECRET_KEY`` and ``FRONTEND_SECRET_KEY`` in the environment or ``.env``, secrets are generated once and
kept in ``DATA_DIR/dev-secrets.json``, so sessions survive restarts. The development sign-in's user ``admin`` may
manage MCP servers unless ``ADMIN_USERS`` says otherwise.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx
from pydantic import TypeAdapter, ValidationError

from frontend.errors import ConfigurationError as FrontendConfigurationError
from frontend.settings import load_settings as load_frontend_settings
from orchestrator.errors import ConfigurationError
from orchestrator.settings import load_settings

START_TIMEOUT_SECONDS = 90.0
DEFAULT_FRONTEND_PORT = "8000"
DEFAULT_ORCHESTRATOR_PORT = "8001"


def main() -> int:
    try:
        orchestrator_settings = load_settings()
        frontend_settings = load_frontend_settings()
    except (ConfigurationError, FrontendConfigurationError) as exc:
        print("The assistant cannot start because of its settings:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    orchestrator_port = os.environ.get("ORCHESTRATOR_PORT", DEFAULT_ORCHESTRATOR_PORT)
    frontend_port = os.environ.get("FRONTEND_PORT", DEFAULT_FRONTEND_PORT)
    env = dict(os.environ)
    env.update(
        HOST="127.0.0.1",
        PORT=orchestrator_port,
        FRONTEND_PORT=frontend_port,
        ORCHESTRATOR_URL=f"http://127.0.0.1:{orchestrator_port}",
    )
    if frontend_settings.jwt_secret_key is None or frontend_settings.frontend_secret_key is None:
        generated = _dev_secrets(orchestrator_settings.data_dir)
        if frontend_settings.jwt_secret_key is None:
            env["JWT_SECRET_KEY"] = generated["jwt_secret_key"]
        if frontend_settings.frontend_secret_key is None:
            env["FRONTEND_SECRET_KEY"] = generated["frontend_secret_key"]
    if not orchestrator_settings.admin_users:
        env["ADMIN_USERS"] = "local:admin"

    children: list[subprocess.Popen[bytes]] = []
    asked_to_stop: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        asked_to_stop.append(signum)
        stop()

    def stop() -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        children.append(subprocess.Popen([sys.executable, "-m", "orchestrator"], env=env))
        if not _wait_until_live(f"http://127.0.0.1:{orchestrator_port}/health/live", children[0]):
            print("The orchestrator did not start; see its messages above.", file=sys.stderr)
            return 1
        children.append(subprocess.Popen([sys.executable, "-m", "frontend"], env=env))
        host = frontend_settings.frontend_host
        print(f"\n  The assistant is at http://{host}:{frontend_port}  (Ctrl-C stops it)\n", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.2)
        if asked_to_stop:
            return 0
        return next((child.returncode for child in children if child.returncode), 0)
    finally:
        stop()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()


def _dev_secrets(data_dir: Path) -> dict[str, str]:
    path = data_dir / "dev-secrets.json"
    try:
        stored = _stored_secrets.validate_json(path.read_bytes())
        if all(stored.get(key) for key in _SECRET_NAMES):
            return {key: stored[key] for key in _SECRET_NAMES}
    except (OSError, ValidationError):
        pass
    generated = {key: secrets.token_urlsafe(48) for key in _SECRET_NAMES}
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(generated))
    return generated


_SECRET_NAMES = ("jwt_secret_key", "frontend_secret_key")
_stored_secrets = TypeAdapter(dict[str, str])


def _wait_until_live(url: str, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


if __name__ == "__main__":
    sys.exit(main())
