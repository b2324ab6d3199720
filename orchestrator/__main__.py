"""``python -m orchestrator``: start the service from the environment's settings alone."""

from __future__ import annotations

import sys

import uvicorn

from orchestrator.app import create_app
from orchestrator.discovery.watcher import cluster_settings
from orchestrator.errors import ConfigurationError
from orchestrator.logs import configure_logging
from orchestrator.mcp.sources import configured_servers
from orchestrator.settings import load_settings


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
    configure_logging(settings.log_level, json_lines=settings.environment == "production")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=settings.log_level == "DEBUG",
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
