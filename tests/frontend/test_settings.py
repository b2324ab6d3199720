from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from frontend.errors import ConfigurationError
from frontend.settings import FrontendSettings, load_settings

PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "frontend_secret_key": "k" * 40,
    "jwt_secret_key": "j" * 40,
    "public_url": "https://chat.example",
}


def _problems(**values: Any) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None, **values)
    return caught.value.problems


def test_development_needs_no_settings_and_offers_the_local_sign_in() -> None:
    settings = load_settings(_env_file=None)

    assert settings.local_signin is True
    assert settings.production is False


def test_production_turns_the_local_sign_in_off() -> None:
    assert load_settings(_env_file=None, **PRODUCTION).local_signin is False


def test_production_refuses_the_local_sign_in_when_asked_for() -> None:
    assert [p for p in _problems(**PRODUCTION, local_signin=True) if p.startswith("LOCAL_SIGNIN")]


@pytest.mark.parametrize("missing", ["frontend_secret_key", "jwt_secret_key", "public_url"])
def test_production_requires_its_secrets_and_public_url(missing: str) -> None:
    values = {key: value for key, value in PRODUCTION.items() if key != missing}

    assert any(problem.startswith(missing.upper()) for problem in _problems(**values))


def test_production_refuses_placeholder_secrets() -> None:
    problems = _problems(**{**PRODUCTION, "jwt_secret_key": "change-me-change-me-change-me-change-me"})

    assert any(problem.startswith("JWT_SECRET_KEY") for problem in problems)


def test_a_provider_needs_both_its_client_id_and_secret() -> None:
    problems = _problems(github_client_id="only-the-id")

    assert any("GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET" in problem for problem in problems)


def test_urls_must_be_http() -> None:
    assert any(problem.startswith("ORCHESTRATOR_URL") for problem in _problems(orchestrator_url="ftp://x"))


def test_env_example_documents_every_setting() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in example.splitlines()
        if "=" in line and line.lstrip("# ")[:1].isupper()
    }

    assert {name.upper() for name in FrontendSettings.model_fields} <= documented
