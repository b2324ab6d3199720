"""``python -m orchestrator``: start the service from the environment's settings alone."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

from orchestrator.app import create_app
from orchestrator.discovery.watcher import cluster_settings
from orchestrator.errors import ConfigurationError
from orchestrator.logs import configure_logging
from orchestrator.mcp.sources import configured_servers
from orchestrator.memory.migrate import upgrade_database
from orchestrator.settings import get_settings, load_settings
from orchestrator.telemetry.http import share_metrics_between_workers


def main() -> None:
    try:
        settings = load_settings()
        configured_servers(settings)  # a broken servers file is a settings problem: report it before starting
        if settings.mcp_kubernetes_discovery:
            cluster_settings(settings)
    except ConfigurationError as exc:
        print("The orchestrator cannot start because of its settings:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("See .env.example and docs/configuration.md.", file=sys.stderr)
        raise SystemExit(2) from None
    if settings.workers > 1 and settings.metrics_enabled:
        share_metrics_between_workers("orchestrator")
    configure_logging(settings.log_level, json_lines=settings.environment == "production")
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": settings.log_level == "DEBUG",
        # X-Forwarded-For is judged by the rate limits (TRUSTED_PROXIES), never taken by uvicorn.
        "proxy_headers": False,
        "timeout_graceful_shutdown": 10,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Migrated once here, so the workers find the database at its latest revision.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(upgrade_database(settings.resolved_database_url))
    uvicorn.run("orchestrator.__main__:worker_app", factory=True, workers=settings.workers, **options)


def worker_app() -> FastAPI:
    """One worker's app (``WORKERS`` > 1): the workers are new processes, reading the same environment."""
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.environment == "production")
    return create_app(settings)


if __name__ == "__main__":
    main()
