from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.mcp.config import load_servers_file, parse_servers, servers_from_urls, url_server_id
from orchestrator.mcp.types import SERVER_ID_PATTERN, ToolPolicyConfig

CLAUDE_DESKTOP = {
    "mcpServers": {
        "filesystem": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
        },
        "git": {"command": "uvx", "args": ["mcp-server-git"], "env": {"GIT_TOKEN": "${TOKEN}"}},
    },
    "globalShortcut": "Ctrl+Space",
}


def problems_of(data: Any, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        parse_servers(data, environ=environ or {})
    return caught.value.problems


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_claude_desktop_snippet_gives_stdio_servers_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, "claude_desktop_config.json", json.dumps(CLAUDE_DESKTOP))

    filesystem, git = load_servers_file(path, environ={"TOKEN": "s3cret"})

    assert (filesystem.id, filesystem.transport, filesystem.command) == ("filesystem", "stdio", "npx")
    assert filesystem.args == ("-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop")
    assert dict(git.env) == {"GIT_TOKEN": "s3cret"}
    assert git.source == "config"


def test_cursor_url_snippet_gives_streamable_http_server_with_headers() -> None:
    data = {"mcpServers": {"remote": {"url": "https://mcp.example.com/mcp", "headers": {"API_KEY": "${KEY}"}}}}

    (remote,) = parse_servers(data, environ={"KEY": "abc"})

    assert remote.transport == "streamable-http"
    assert remote.url == "https://mcp.example.com/mcp"
    assert dict(remote.headers) == {"API_KEY": "abc"}


@pytest.mark.parametrize(
    ("entry", "transport"),
    [
        ({"url": "http://host/sse"}, "sse"),
        ({"url": "http://host/sse/"}, "sse"),
        ({"url": "http://host/mcp"}, "streamable-http"),
        ({"type": "sse", "url": "http://host/events"}, "sse"),
        ({"type": "http", "url": "http://host/sse"}, "streamable-http"),
        ({"type": "streamableHttp", "url": "http://host/x"}, "streamable-http"),
        ({"transport": "streamable-http", "url": "http://host/x"}, "streamable-http"),
        ({"type": "stdio", "command": "srv"}, "stdio"),
    ],
)
def test_transport_comes_from_type_or_else_from_the_url(entry: dict[str, Any], transport: str) -> None:
    (config,) = parse_servers({"mcpServers": {"s": entry}}, environ={})

    assert config.transport == transport


def test_transport_is_guessed_from_the_url_after_expansion() -> None:
    data = {"mcpServers": {"events": {"url": "${U}"}, "plain": {"url": "${P}"}}}

    events, plain = parse_servers(data, environ={"U": "http://h:1/sse", "P": "http://h:1/mcp"})

    assert (events.transport, events.url) == ("sse", "http://h:1/sse")
    assert plain.transport == "streamable-http"


def test_trust_keys_set_the_user_id_and_service_token_flags() -> None:
    data = {
        "mcpServers": {
            "ours": {"url": "http://notes/mcp", "sendUserId": True, "useServiceToken": True},
            "theirs": {"command": "srv", "sendUserId": False},
        }
    }

    ours, theirs = parse_servers(data, environ={})

    assert (ours.send_user_id, ours.use_service_token) == (True, True)
    assert (theirs.send_user_id, theirs.use_service_token) == (False, False)


def test_yaml_file_is_read_like_json(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "servers.yaml",
        """
mcpServers:
  time:
    command: python
    args: [-m, mcp_server_time]
    timeout: 5
    connectTimeout: 2.5
  notes:
    url: http://notes:8080/mcp
    disabled: true
    description: ignored, as other clients use it
""",
    )

    time, notes = load_servers_file(path, environ={})

    assert time.args == ("-m", "mcp_server_time")
    assert (time.tool_timeout_seconds, time.connect_timeout_seconds) == (5.0, 2.5)
    assert notes.enabled is False


def test_vscode_servers_key_is_accepted() -> None:
    (config,) = parse_servers({"servers": {"s": {"type": "stdio", "command": "srv"}}}, environ={})

    assert config.id == "s"


def test_env_expansion_supports_defaults_and_env_prefix() -> None:
    entry = {
        "command": "${BIN:-/usr/bin/srv}",
        "args": ["--home=${HOME}", "${env:MODE}", "plain $HOME stays"],
        "env": {"EMPTY_DEFAULT": "${UNSET:-}", "NUMBER": 8080, "FLAG": True},
        "cwd": "work",
    }

    (config,) = parse_servers({"mcpServers": {"s": entry}}, environ={"HOME": "/home/me", "MODE": "fast"})

    assert config.command == "/usr/bin/srv"
    assert config.args == ("--home=/home/me", "fast", "plain $HOME stays")
    assert dict(config.env) == {"EMPTY_DEFAULT": "", "NUMBER": "8080", "FLAG": "true"}
    assert config.cwd == "work"


def test_relative_cwd_is_relative_to_the_servers_file(tmp_path: Path) -> None:
    path = write(tmp_path, "servers.json", json.dumps({"mcpServers": {"s": {"command": "srv", "cwd": "data"}}}))

    (config,) = load_servers_file(path, environ={})

    assert config.cwd == str(tmp_path / "data")


def test_tool_policy_and_concurrency_keys_set_the_servers_approvals_and_limit() -> None:
    data = {
        "mcpServers": {
            "files": {
                "command": "srv",
                "toolPolicy": {"default": "ask", "tools": {"read_file": "run", "delete_file": "deny"}},
                "maxConcurrentCalls": 2,
            },
            "plain": {"url": "http://notes/mcp"},
        }
    }

    files, plain = parse_servers(data, environ={})

    assert files.tool_policy == ToolPolicyConfig(default="ask", tools={"read_file": "run", "delete_file": "deny"})
    assert files.max_concurrent_calls == 2
    assert (plain.tool_policy, plain.max_concurrent_calls) == (None, None)


def test_bad_tool_policies_and_limits_are_reported_by_field() -> None:
    data = {
        "mcpServers": {
            "a": {"command": "srv", "toolPolicy": "run"},
            "b": {"command": "srv", "toolPolicy": {"default": "maybe", "tools": {"x": "allow"}, "roles": {}}},
            "c": {"command": "srv", "maxConcurrentCalls": 0},
            "d": {"command": "srv", "maxConcurrentCalls": True},
        }
    }

    assert problems_of(data) == [
        'mcpServers.a.toolPolicy: must be an object such as {"default": "ask", "tools": {"read_file": "run"}}',
        "mcpServers.b.toolPolicy.default: must be 'run', 'ask' or 'deny'",
        "mcpServers.b.toolPolicy.tools.x: must be 'run', 'ask' or 'deny'",
        "mcpServers.b.toolPolicy.roles: unknown key (expected 'default' and 'tools')",
        "mcpServers.c.maxConcurrentCalls: must be a whole number from 1 to 256",
        "mcpServers.d.maxConcurrentCalls: must be a whole number from 1 to 256",
    ]


def test_every_problem_is_reported_once_naming_server_and_field() -> None:
    data: dict[str, Any] = {
        "mcpServers": {
            "git": {"type": "stdio", "args": ["x"]},
            "both": {"command": "a", "url": "http://b"},
            "neither": {"env": {}},
            "typo": {"comand": "srv", "command": "srv"},
            "bad values": {"command": "srv"},
            "types": {"command": "", "args": "not-a-list", "env": ["x"], "timeout": 0, "disabled": "no"},
            "trust": {"command": "srv", "sendUserId": "yes", "useServiceToken": 1},
            "http": {"url": "ftp://x", "command": "srv", "type": "sse"},
            "missing": {"command": "${NOPE}"},
            "kind": {"type": "websocket", "url": "ws://x"},
            "vscode": {"command": "srv", "envFile": ".env"},
            "notobject": "srv",
        }
    }

    problems = problems_of(data)

    assert problems == [
        "mcpServers.git: a stdio server needs a 'command'",
        "mcpServers.both: a server has either a 'command' (stdio) or a 'url' (HTTP), not both",
        "mcpServers.neither: a server needs a 'command' (stdio) or a 'url' (HTTP)",
        "mcpServers.typo.comand: unknown key (check the spelling)",
        "mcpServers.bad values: a server id is 1-48 letters, digits, '_' or '-', starting with a letter or digit",
        "mcpServers.types.command: must not be empty",
        "mcpServers.types.args: must be a list of strings",
        "mcpServers.types.env: must be an object of names to strings",
        "mcpServers.types.timeout: must be a number of seconds, more than 0 and at most 3600",
        "mcpServers.types.disabled: must be true or false",
        "mcpServers.trust.sendUserId: must be true or false",
        "mcpServers.trust.useServiceToken: must be true or false",
        "mcpServers.http.command: a sse server takes 'url', not stdio settings",
        "mcpServers.http.url: must be an http:// or https:// URL",
        "mcpServers.missing.command: environment variable 'NOPE' is not set (use ${NOPE:-default} for a default)",
        "mcpServers.kind.type: must be one of 'stdio', 'http', 'streamable-http', 'streamableHttp', 'sse'",
        "mcpServers.vscode.envFile: 'envFile' is not supported; put the variables in 'env' (values may use ${VAR})",
        "mcpServers.notobject: a server must be an object",
    ]


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"servers_typo": {}},
        {"mcpServers": ["a"]},
        {"mcpServers": {}, "servers": {}},
    ],
)
def test_a_document_without_a_servers_object_is_refused(data: Any) -> None:
    assert len(problems_of(data)) == 1


def test_an_empty_servers_object_means_no_servers() -> None:
    assert parse_servers({"mcpServers": {}}, environ={}) == []
    assert parse_servers({"mcpServers": None}, environ={}) == []


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("servers.json", '{"mcpServers": {"a": {"command": "x"}, "a": {"command": "y"}}}'),
        ("servers.yaml", "mcpServers:\n  a: {command: x}\n  a: {command: y}\n"),
        ("servers.json", '{"mcpServers": '),
        ("servers.yaml", "mcpServers: [unclosed"),
        ("servers.toml", ""),
        ("missing.json", None),
    ],
)
def test_unreadable_files_and_duplicate_ids_are_refused(tmp_path: Path, name: str, text: str | None) -> None:
    path = tmp_path / name if text is None else write(tmp_path, name, text)

    with pytest.raises(ConfigurationError) as caught:
        load_servers_file(path, environ={})

    assert len(caught.value.problems) == 1


def test_discovered_urls_get_deterministic_legal_ids() -> None:
    urls = ["http://time-server:8080/mcp", "https://notes.internal/sse", "http://time-server:8080/mcp", " "]

    time, notes = servers_from_urls(urls)

    assert (time.id, time.transport, time.source) == ("time-server-8080-mcp", "streamable-http", "discovery")
    assert (notes.id, notes.transport) == ("notes-internal-443-sse", "sse")
    assert servers_from_urls(urls) == [time, notes]


def test_very_long_discovered_urls_are_shortened_with_a_hash() -> None:
    long_url = "http://" + "a" * 60 + ".example:9000/" + "p/" * 40
    other = long_url + "x"

    first, second = url_server_id(long_url), url_server_id(other)

    assert first != second
    for server_id in (first, second):
        assert re.fullmatch(SERVER_ID_PATTERN, server_id)


def test_bad_discovered_urls_are_all_reported() -> None:
    with pytest.raises(ConfigurationError) as caught:
        servers_from_urls(["ftp://x/y", "not a url", "http://h:port/a", "http://h:1/a", "https://h:1/a"])

    assert len(caught.value.problems) == 4  # three bad URLs, and two URLs with one id
