from __future__ import annotations

from orchestrator.mcp.redaction import config_secrets, public_url, redact
from orchestrator.mcp.types import ServerConfig


def test_values_of_credential_flags_in_args_are_secrets() -> None:
    config = ServerConfig(
        id="db",
        transport="stdio",
        command="srv",
        args=("--api-key", "k-111111", "--token=t-222222", "PASSWORD=p-333333", "--verbose", "--port", "8080"),
    )

    secrets = config_secrets(config)

    assert {"k-111111", "t-222222", "p-333333"} <= set(secrets)
    assert not {"--verbose", "8080", "--port"} & set(secrets)


def test_credentials_in_urls_are_secrets_wherever_the_url_is() -> None:
    dsn = "postgresql://app:pw-444444@db:5432/notes"
    http = ServerConfig(
        id="remote",
        transport="streamable-http",
        url="https://me:pw-555555@h/mcp?apiKey=abcd&format=json&sig=s-66666666",
    )
    stdio = ServerConfig(id="pg", transport="stdio", command="srv", args=(dsn, f"--dsn={dsn}"))

    http_secrets, stdio_secrets = set(config_secrets(http)), set(config_secrets(stdio))

    assert {"me:pw-555555", "pw-555555", "abcd", "s-66666666"} <= http_secrets
    assert "json" not in http_secrets  # short and not named like a credential
    assert {dsn, "app:pw-444444", "pw-444444"} <= stdio_secrets


def test_env_and_header_values_and_their_words_are_secrets() -> None:
    config = ServerConfig(
        id="remote", transport="sse", url="https://h/sse", headers={"Authorization": "Bearer tok-777777"}
    )

    assert redact("sent Bearer tok-777777 to h", config_secrets(config)) == "sent *** to h"
    assert redact("sent tok-777777", config_secrets(config)) == "sent ***"


def test_public_urls_lose_user_info_query_and_fragment() -> None:
    assert public_url("https://u:p@Host:8443/mcp?token=x#frag") == "https://host:8443/mcp"
