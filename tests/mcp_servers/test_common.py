"""What both servers share: the user-id key, the service-token gate, settings and the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mcp_servers._common import (
    EXIT_USAGE,
    USER_META_KEY,
    ServeOptions,
    ServiceTokenMiddleware,
    UnauthenticatedExposure,
    is_loopback,
    parse_serve_options,
    serve,
    streamable_http_app,
)
from mcp_servers.notes.server import create_server as create_notes_server
from mcp_servers.notes.settings import NotesSettings
from mcp_servers.workspace.server import create_server as create_workspace_server
from mcp_servers.workspace.settings import WorkspaceSettings
from orchestrator.mcp.types import USER_META_KEY as ORCHESTRATOR_USER_META_KEY
from tests.mcp_servers.harness import REPO_ROOT, server_env

# An address for documentation (RFC 5737) that no machine has: a server that got as far as binding it would fail
# to, with another exit status than a refusal's.
UNREACHABLE_PUBLIC_HOST = "192.0.2.1"

TOKEN = "a-service-token-of-reasonable-length"


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


def gated_app() -> ServiceTokenMiddleware:
    return ServiceTokenMiddleware(Starlette(routes=[Route("/", hello)]), TOKEN)


def test_the_servers_read_the_user_id_under_the_key_the_orchestrator_sends() -> None:
    assert USER_META_KEY == ORCHESTRATOR_USER_META_KEY


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
async def test_the_gate_answers_401_without_the_service_token(authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gated_app()), base_url="http://test") as http:
        response = await http.get("/", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_the_gate_lets_the_service_token_through(scheme: str) -> None:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gated_app()), base_url="http://test") as http:
        response = await http.get("/", headers={"Authorization": f"{scheme} {TOKEN}"})

    assert (response.status_code, response.text) == (200, "hello")


def test_the_http_app_is_gated_only_when_a_token_is_set(tmp_path: Path) -> None:
    def app(token: SecretStr | None) -> object:
        server = create_notes_server(NotesSettings(db_path=tmp_path / "notes.db"))
        return streamable_http_app(server, host="127.0.0.1", service_token=token)

    assert isinstance(app(SecretStr(TOKEN)), ServiceTokenMiddleware)
    assert not isinstance(app(None), ServiceTokenMiddleware)
    assert not isinstance(app(SecretStr("")), ServiceTokenMiddleware)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.internal"])
def test_the_http_app_beyond_loopback_needs_a_token_or_an_explicit_allowance(tmp_path: Path, host: str) -> None:
    server = create_notes_server(NotesSettings(db_path=tmp_path / "notes.db"))

    with pytest.raises(UnauthenticatedExposure):
        streamable_http_app(server, host=host, service_token=None)
    with pytest.raises(UnauthenticatedExposure):
        streamable_http_app(server, host=host, service_token=SecretStr(""))
    gated = streamable_http_app(server, host=host, service_token=SecretStr(TOKEN))
    allowed = streamable_http_app(server, host=host, service_token=None, allow_unauthenticated=True)

    assert isinstance(gated, ServiceTokenMiddleware)
    assert not isinstance(allowed, ServiceTokenMiddleware)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_only_loopback_hosts_count_as_local(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_server_refuses_to_serve_http_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_servers.notes",
            "--transport",
            "streamable-http",
            "--host",
            UNREACHABLE_PUBLIC_HOST,
        ],
        cwd=REPO_ROOT,
        env=server_env({"NOTES_DB_PATH": str(tmp_path / "notes.db")}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert finished.returncode == EXIT_USAGE, finished.stderr


def test_serve_exits_with_a_usage_error_rather_than_serve_http_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    server = create_workspace_server(WorkspaceSettings(root=tmp_path / "workspace"))
    options = ServeOptions(transport="streamable-http", host=UNREACHABLE_PUBLIC_HOST, port=0)

    with pytest.raises(SystemExit) as exited:
        serve(server, options, service_token=None)

    assert exited.value.code == EXIT_USAGE


def test_settings_come_from_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NOTES_DB_PATH", str(tmp_path / "n.db"))
    monkeypatch.setenv("WORKSPACE_ROOT", str(tmp_path / "ws"))
    monkeypatch.setenv("WORKSPACE_MAX_FILE_BYTES", "123")
    monkeypatch.setenv("MCP_SERVICE_TOKEN", TOKEN)

    notes = NotesSettings()
    workspace = WorkspaceSettings()

    assert notes.db_path == tmp_path / "n.db"
    assert (workspace.root, workspace.max_file_bytes) == (tmp_path / "ws", 123)
    assert notes.service_token == workspace.service_token == SecretStr(TOKEN)


def test_the_command_line_defaults_to_stdio_on_loopback() -> None:
    options = parse_serve_options([], prog="x", description="x", default_port=8101)

    assert (options.transport, options.host, options.port) == ("stdio", "127.0.0.1", 8101)
    assert options.allow_unauthenticated is False


def test_the_command_line_selects_streamable_http() -> None:
    options = parse_serve_options(
        ["--transport", "streamable-http", "--host", "0.0.0.0", "--port", "0"],
        prog="x",
        description="x",
        default_port=1,
    )

    assert (options.transport, options.host, options.port) == ("streamable-http", "0.0.0.0", 0)


def test_the_command_line_can_allow_unauthenticated_http() -> None:
    options = parse_serve_options(["--allow-unauthenticated"], prog="x", description="x", default_port=1)

    assert options.allow_unauthenticated is True


def test_the_command_line_refuses_an_unknown_transport() -> None:
    with pytest.raises(SystemExit):
        parse_serve_options(["--transport", "carrier-pigeon"], prog="x", description="x", default_port=1)
