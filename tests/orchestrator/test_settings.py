from pathlib import Path

import pytest

from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings, load_settings


def test_defaults_run_on_embedded_sqlite_without_a_model(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, _env_file=None)

    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{(tmp_path / 'assistant.db').resolve()}"
    assert not settings.model_configured
    assert not settings.auth_enabled
    assert (settings.host, settings.port, settings.openai_model) == ("127.0.0.1", 8000, "gpt-4o-mini")


def test_comma_separated_lists_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_DISCOVERY_URLS", "http://a:1/mcp, https://b/sse,")
    monkeypatch.setenv("ADMIN_USERS", "alice,bob")

    settings = load_settings(_env_file=None)

    assert settings.mcp_discovery_urls == ["http://a:1/mcp", "https://b/sse"]
    assert settings.admin_users == ["alice", "bob"]


def test_every_invalid_setting_is_reported_once_by_its_variable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "0")
    monkeypatch.setenv("OPENAI_TEMPERATURE", "hot")
    monkeypatch.setenv("MCP_DISCOVERY_URLS", "ftp://nope")
    monkeypatch.setenv("ENVIRONMENT", "staging")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)

    names = sorted(problem.split(":")[0] for problem in caught.value.problems)
    assert names == ["ENVIRONMENT", "MCP_DISCOVERY_URLS", "OPENAI_TEMPERATURE", "PORT"]


def test_production_refuses_missing_secrets() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environment="production", _env_file=None)

    assert sorted(problem.split(":")[0] for problem in caught.value.problems) == [
        "JWT_SECRET_KEY",
        "TOKEN_ENCRYPTION_KEY",
    ]


@pytest.mark.parametrize("secret", ["short", "change-me-change-me-change-me-change-me", "x" * 31])
def test_production_refuses_placeholder_secrets(secret: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            environment="production",
            jwt_secret_key=secret,
            mcp_service_token=secret,
            token_encryption_key=f"{'k3Y' * 16},{secret}",  # every key of a rotation is checked
            _env_file=None,
        )

    assert sorted(problem.split(":")[0] for problem in caught.value.problems) == [
        "JWT_SECRET_KEY",
        "MCP_SERVICE_TOKEN",
        "TOKEN_ENCRYPTION_KEY",
    ]


def test_production_accepts_long_random_secrets() -> None:
    settings = load_settings(
        environment="production", jwt_secret_key="k3Y" * 16, token_encryption_key="t0K" * 16, _env_file=None
    )

    assert settings.auth_enabled


def test_a_missing_servers_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(mcp_config=tmp_path / "absent.json", _env_file=None)

    assert caught.value.problems[0].startswith("MCP_CONFIG")


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_MAX_TOKENS", "")
    monkeypatch.setenv("OPENAI_API_KEY", "")

    settings = load_settings(_env_file=None)

    assert settings.openai_max_tokens is None
    assert not settings.model_configured


def test_env_example_documents_every_setting() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in example.splitlines()
        if "=" in line and line.lstrip("# ")[:1].isupper()
    }

    assert {name.upper() for name in Settings.model_fields} <= documented


def test_the_offline_model_embeds_unless_an_embeddings_endpoint_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-chat-only")

    assert load_settings(_env_file=None).resolved_embeddings_provider == "local"
    assert load_settings(_env_file=None, embeddings_api_key="sk-e").resolved_embeddings_provider == "openai"
    assert load_settings(_env_file=None, embeddings_provider="openai").resolved_embeddings_provider == "openai"


def test_openai_embeddings_without_any_endpoint_or_key_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    with pytest.raises(ConfigurationError) as raised:
        load_settings(_env_file=None, embeddings_provider="openai")

    assert any("EMBEDDINGS_PROVIDER" in problem for problem in raised.value.problems)


def test_pinned_tools_are_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOL_RETRIEVAL_PINNED", "notes__*, workspace__read_file")

    assert load_settings(_env_file=None).tool_retrieval_pinned == ["notes__*", "workspace__read_file"]


def test_several_workers_need_a_qdrant_server_while_long_term_memory_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VECTOR_DB_URL", raising=False)
    monkeypatch.delenv("MEMORY_ENABLED", raising=False)
    redis = "redis://127.0.0.1:6379/0"

    with pytest.raises(ConfigurationError) as caught:
        load_settings(workers=2, redis_url=redis, _env_file=None)

    assert [problem.split(":")[0] for problem in caught.value.problems] == ["WORKERS"]
    assert load_settings(workers=2, redis_url=redis, vector_db_url="http://qdrant:6333", _env_file=None).workers == 2
    assert load_settings(workers=2, redis_url=redis, memory_enabled=False, _env_file=None).workers == 2
