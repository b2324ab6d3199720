from __future__ import annotations

import httpx2
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from orchestrator.mcp.failures import describe_failure, is_expected_failure
from orchestrator.mcp.types import ServerConfig

HTTP = ServerConfig(
    id="remote",
    transport="streamable-http",
    url="https://user:pw@mcp.example.com/mcp?token=abcdef123",
    headers={"Authorization": "Bearer tok-123456"},
)
STDIO = ServerConfig(id="local", transport="stdio", command="srv", env={"API_KEY": "key-987654"})


def test_urls_in_messages_lose_credentials_and_query() -> None:
    request = httpx2.Request("GET", HTTP.url or "")
    error = ExceptionGroup("task group", [httpx2.ConnectError(f"failed for {HTTP.url}", request=request)])

    message = describe_failure(error, HTTP)

    assert "mcp.example.com/mcp" in message
    for secret in ("user", "pw", "abcdef123"):
        assert secret not in message


def test_known_secrets_are_masked_even_in_server_output() -> None:
    closed = MCPError(code=CONNECTION_CLOSED, message="Connection closed")

    message = describe_failure(closed, STDIO, stderr_line="auth failed for key-987654 and tok")

    assert "key-987654" not in message
    assert "***" in message


def test_the_cause_is_preferred_over_the_connection_closing() -> None:
    closed = MCPError(code=CONNECTION_CLOSED, message="Connection closed")
    error = ExceptionGroup("outer", [closed, ExceptionGroup("inner", [FileNotFoundError(2, "No such file", "srv")])])

    assert describe_failure(error, STDIO) == "cannot start 'srv': No such file"


def test_connection_failures_are_expected_and_bugs_are_not() -> None:
    assert is_expected_failure(ExceptionGroup("g", [ConnectionRefusedError(), TimeoutError()]))
    assert not is_expected_failure(ExceptionGroup("g", [ConnectionRefusedError(), KeyError("bug")]))
