"""Where the servers come from: the servers file, discovery URLs, our first-party servers, run-time registrations."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from orchestrator.errors import ConfigurationError
from orchestrator.mcp.config import load_servers_file, servers_from_urls
from orchestrator.mcp.types import ServerConfig
from orchestrator.memory.types import ServerRegistration
from orchestrator.settings import Settings

logger = logging.getLogger(__name__)


def builtin_servers(data_dir: Path) -> list[ServerConfig]:
    """Our first-party servers over stdio, keeping their data in the data directory."""
    data_dir = data_dir.resolve()
    return [
        ServerConfig(
            id="notes",
            transport="stdio",
            command=sys.executable,
            args=("-m", "mcp_servers.notes"),
            env={"NOTES_DB_PATH": str(data_dir / "notes.db")},
            send_user_id=True,
            share=True,  # each user's own data: fine to offer to the user's other MCP clients
        ),
        ServerConfig(
            id="workspace",
            transport="stdio",
            command=sys.executable,
            args=("-m", "mcp_servers.workspace"),
            env={"WORKSPACE_ROOT": str(data_dir / "workspace")},
            send_user_id=True,
            share=True,
        ),
    ]


def with_service_token(config: ServerConfig, token: str | None) -> ServerConfig:
    """Send MCP_SERVICE_TOKEN to an HTTP server that opted in, unless its entry already says how to authenticate."""
    if token is None or config.transport == "stdio" or not config.use_service_token:
        return config
    if any(name.lower() == "authorization" for name in config.headers):
        return config
    return config.model_copy(update={"headers": {**config.headers, "Authorization": f"Bearer {token}"}})


def from_registration(registration: ServerRegistration, settings: Settings) -> ServerConfig:
    return ServerConfig(
        id=registration.id,
        transport=registration.transport,
        url=registration.url,
        headers=dict(registration.headers),
        tool_timeout_seconds=registration.tool_timeout_seconds or settings.mcp_tool_timeout_seconds,
        connect_timeout_seconds=settings.mcp_connect_timeout_seconds,
        source="runtime",
        send_user_id=registration.send_user_id,
        use_service_token=registration.use_service_token,
        max_concurrent_calls=registration.max_concurrent_calls,
    )


def configured_servers(settings: Settings, registrations: Sequence[ServerRegistration] = ()) -> list[ServerConfig]:
    """Every server the settings name, plus the run-time registrations kept in the database.

    Raises:
        ConfigurationError: the servers file is invalid, or two sources use the same server id.
    """
    token = settings.mcp_service_token.get_secret_value() if settings.mcp_service_token else None
    explicit: list[ServerConfig] = []
    if settings.mcp_config is not None:
        explicit.extend(load_servers_file(settings.mcp_config))
    # Discovery URLs name the deployment's own servers: they get the service token and the user id.
    explicit.extend(
        with_service_token(config.model_copy(update={"send_user_id": True, "use_service_token": True}), token)
        for config in servers_from_urls(list(settings.mcp_discovery_urls))
    )
    _check_unique(explicit)
    taken = {config.id for config in explicit}
    servers = list(explicit)
    if settings.mcp_builtin_servers:
        servers.extend(config for config in builtin_servers(settings.data_dir) if config.id not in taken)
    taken = {config.id for config in servers}
    for registration in registrations:
        if registration.id in taken:
            logger.warning(
                "the server registered at run time as %r is shadowed by a configured server with the same id; "
                "rename one of them",
                registration.id,
            )
            continue
        servers.append(with_service_token(from_registration(registration, settings), token))
    # Disabled entries stay: they are listed as stopped, so people can see them.
    return [_apply_defaults(config, settings) for config in servers]


def _apply_defaults(config: ServerConfig, settings: Settings) -> ServerConfig:
    """Fill timeouts an entry left unset from MCP_TOOL_TIMEOUT_SECONDS and MCP_CONNECT_TIMEOUT_SECONDS."""
    update: dict[str, float] = {}
    if "tool_timeout_seconds" not in config.model_fields_set:
        update["tool_timeout_seconds"] = settings.mcp_tool_timeout_seconds
    if "connect_timeout_seconds" not in config.model_fields_set:
        update["connect_timeout_seconds"] = settings.mcp_connect_timeout_seconds
    return config.model_copy(update=update) if update else config


def _check_unique(configs: Iterable[ServerConfig]) -> None:
    seen: set[str] = set()
    problems: list[str] = []
    for config in configs:
        if config.id in seen:
            problems.append(f"server id {config.id!r} is used by both MCP_CONFIG and MCP_DISCOVERY_URLS")
        seen.add(config.id)
    if problems:
        raise ConfigurationError(problems)
