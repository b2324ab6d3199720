"""``python -m frontend``: serve the frontend with gunicorn (threads, so streamed replies do not block others)."""

from __future__ import annotations

import os
import secrets
import sys
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from prometheus_client import multiprocess
from pydantic import SecretStr

from frontend.app import create_app
from frontend.errors import ConfigurationError
from frontend.settings import FrontendSettings, load_settings
from orchestrator.logs import configure_logging
from orchestrator.telemetry.http import MULTIPROCESS_ENV, share_metrics_between_workers


class _Server(BaseApplication):
    """gunicorn with our app object and options, instead of its command line."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:  # gunicorn's WSGI type and Flask's differ only in how they spell the environ mapping
        return self._app


def main() -> None:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print("The frontend cannot start because of its settings:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("See .env.example and docs/configuration.md.", file=sys.stderr)
        raise SystemExit(2) from None
    if settings.frontend_workers > 1 and settings.metrics_enabled:
        share_metrics_between_workers("frontend")
    configure_logging(settings.log_level, json_lines=settings.production)
    if settings.frontend_secret_key is None:
        # Every worker must share one key (CSRF tokens are signed with it), so pick it here, before they fork.
        settings = settings.model_copy(update={"frontend_secret_key": SecretStr(secrets.token_urlsafe(32))})
    _Server(create_app(settings), _gunicorn_options(settings)).run()


def _worker_exited(_server: Any, worker: Any) -> None:
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(worker.pid)  # pyright: ignore[reportUnknownMemberType] - untyped


def _gunicorn_options(settings: FrontendSettings) -> dict[str, Any]:
    return {
        "child_exit": _worker_exited,
        "bind": f"{settings.frontend_host}:{settings.frontend_port}",
        "workers": settings.frontend_workers,
        "worker_class": "gthread",
        "threads": settings.frontend_threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": "-" if settings.log_level == "DEBUG" else None,
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "preload_app": True,
        "forwarded_allow_ips": "",
        # gunicornc's control socket would live in $HOME, which is read-only in containers and shared between
        # instances on one machine.
        "control_socket_disable": True,
    }


if __name__ == "__main__":
    main()
