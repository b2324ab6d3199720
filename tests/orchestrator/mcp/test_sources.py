"""Where servers come from: the servers file, discovery URLs, the built-in servers and run-time registrations."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.mcp.sources import configured_servers, with_service_token
from orchestrator.mcp.types import ServerConfig
from orchestrator.memory.types import ServerRegistration
from orchestrator.settings import Settings, load_settings

TOKEN = "t" * 40


def settings_with(tmp_path: Path, servers: dict[str, Any] | None = None, **overrides: Any) -> Settings:
    if servers is not None:
        path = tmp_path / "servers.json"
        path.write_text(json.dumps({"mcpServers": servers}))
        overrides["mcp_config"] = path
    return load_settings(data_dir=tmp_path / "data", _env_file=None, **overrides)


def by_id(configs: list[ServerConfig]) -> dict[str, ServerConfig]:
    return {config.id: config for config in configs}


def test_the_built_in_servers_run_by_default_and_receive_the_user_id(tmp_path: Path) -> None:
    servers = by_id(configured_servers(settings_with(tmp_path)))

    assert set(servers) == {"notes", "workspace"}
    assert all(config.transport == "stdio" and config.send_user_id for config in servers.values())
    assert str(tmp_path / "data") in servers["notes"].env["NOTES_DB_PATH"]


def test_a_servers_file_entry_replaces_the_built_in_server_of_the_same_id(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, {"notes": {"url": "http://127.0.0.1:8101/mcp"}})

    servers = by_id(configured_servers(settings))

    assert (servers["notes"].transport, servers["notes"].source) == ("streamable-http", "config")
    assert "workspace" in servers


def test_built_in_servers_can_be_turned_off(tmp_path: Path) -> None:
    assert configured_servers(settings_with(tmp_path, {}, mcp_builtin_servers=False)) == []


def test_discovered_servers_are_trusted_with_the_service_token_and_the_user_id(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path, mcp_builtin_servers=False, mcp_discovery_urls="http://notes:8000/mcp", mcp_service_token=TOKEN
    )

    [server] = configured_servers(settings)

    assert (server.source, server.send_user_id) == ("discovery", True)
    assert server.headers["Authorization"] == f"Bearer {TOKEN}"


def test_third_party_servers_get_neither_the_token_nor_the_user_id_unless_they_opt_in(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        {"remote": {"url": "https://mcp.example.com/mcp"}},
        mcp_builtin_servers=False,
        mcp_service_token=TOKEN,
    )

    [server] = configured_servers(settings)

    assert "Authorization" not in server.headers
    assert not server.send_user_id


def test_an_entry_with_its_own_authorization_keeps_it() -> None:
    config = ServerConfig(
        id="x", transport="sse", url="http://x/sse", headers={"authorization": "Bearer own"}, use_service_token=True
    )

    assert with_service_token(config, TOKEN).headers == {"authorization": "Bearer own"}


def test_stdio_servers_never_get_the_token() -> None:
    config = ServerConfig(id="x", transport="stdio", command="x", use_service_token=True)

    assert with_service_token(config, TOKEN) == config


def test_an_id_used_by_both_the_file_and_discovery_is_refused(tmp_path: Path) -> None:
    discovered = "http://127.0.0.1:8101/mcp"
    settings = settings_with(tmp_path, {}, mcp_discovery_urls=discovered, mcp_builtin_servers=False)
    [server] = configured_servers(settings)
    clash = settings_with(tmp_path, {server.id: {"command": "x"}}, mcp_discovery_urls=discovered)

    with pytest.raises(ConfigurationError):
        configured_servers(clash)


def test_run_time_registrations_follow_and_keep_their_trust_settings(tmp_path: Path) -> None:
    registration = ServerRegistration(
        id="extra", transport="sse", url="http://extra/sse", send_user_id=True, use_service_token=True
    )
    settings = settings_with(tmp_path, {}, mcp_builtin_servers=False, mcp_service_token=TOKEN)

    [server] = configured_servers(settings, [registration])

    assert (server.source, server.send_user_id, server.headers["Authorization"]) == ("runtime", True, f"Bearer {TOKEN}")


def test_a_registration_shadowed_by_a_configured_server_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registration = ServerRegistration(id="notes", transport="sse", url="http://elsewhere/sse")

    with caplog.at_level(logging.WARNING, logger="orchestrator.mcp.sources"):
        servers = by_id(configured_servers(settings_with(tmp_path), [registration]))

    assert servers["notes"].source == "config"
    assert "notes" in caplog.text


def test_timeouts_left_unset_come_from_the_settings(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        {"quick": {"command": "x", "timeout": 5}, "default": {"command": "y"}},
        mcp_builtin_servers=False,
        mcp_tool_timeout_seconds=42,
    )

    servers = by_id(configured_servers(settings))

    assert (servers["quick"].tool_timeout_seconds, servers["default"].tool_timeout_seconds) == (5, 42)


def test_disabled_entries_are_kept_so_they_can_be_listed(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, {"off": {"command": "x", "disabled": True}}, mcp_builtin_servers=False)

    [server] = configured_servers(settings)

    assert not server.enabled
