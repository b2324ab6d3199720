"""The frontend's settings: one pydantic-settings class read from the environment (and an optional ``.env``).

Names the orchestrator also reads (``ENVIRONMENT``, ``JWT_SECRET_KEY``, ``REDIS_URL``) mean the same thing here, so
one ``.env`` configures both services; the frontend's own listener and secret are prefixed ``FRONTEND_``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from frontend.errors import ConfigurationError
from orchestrator.settings import MIN_SECRET_LENGTH, describe_error, looks_like_placeholder

Environment = Literal["development", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


class FrontendSettings(BaseSettings):
    """Every setting the frontend reads. Names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore", frozen=True
    )

    # --- service ---
    environment: Environment = "development"
    log_level: LogLevel = "INFO"
    frontend_host: str = "127.0.0.1"
    frontend_port: int = Field(default=8080, ge=1, le=65535)
    frontend_workers: int = Field(default=2, ge=1, le=64)
    frontend_threads: int = Field(default=32, ge=1, le=1000)
    frontend_secret_key: SecretStr | None = Field(default=None, validate_default=True)
    public_url: str | None = Field(default=None, validate_default=True)
    data_dir: Path = Path("data")

    # --- the orchestrator ---
    orchestrator_url: str = "http://127.0.0.1:8000"
    orchestrator_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    jwt_secret_key: SecretStr | None = Field(default=None, validate_default=True)
    jwt_lifetime_seconds: int = Field(default=300, ge=30, le=3600)

    # --- telemetry ---
    metrics_enabled: bool = True
    otel_enabled: bool = False
    otel_exporter_otlp_endpoint: str = "http://localhost:4318"
    frontend_otel_service_name: str = Field(default="mcp-assistant-frontend", min_length=1)

    # --- sessions ---
    redis_url: str | None = None
    session_lifetime_hours: int = Field(default=168, ge=1, le=24 * 90)
    max_request_bytes: int = Field(default=1_048_576, ge=1_024)

    # --- sign-in ---
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    google_discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"
    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    github_authorize_url: str = "https://github.com/login/oauth/authorize"
    github_token_url: str = "https://github.com/login/oauth/access_token"
    github_api_url: str = "https://api.github.com"
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_discovery_url: str | None = None
    oidc_label: str = Field(default="Single sign-on", min_length=1, max_length=60)
    local_signin: bool | None = Field(default=None, validate_default=True)

    _urls = field_validator(
        "otel_exporter_otlp_endpoint",
        "orchestrator_url",
        "google_discovery_url",
        "github_authorize_url",
        "github_token_url",
        "github_api_url",
    )(_http_url)

    @field_validator("public_url", "oidc_discovery_url")
    @classmethod
    def _optional_http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = _http_url(value)
        if info.field_name == "public_url" and value is None and info.data.get("environment") == "production":
            raise ValueError("is required in production (the address users reach, e.g. https://chat.example.com)")
        return value

    @field_validator("frontend_secret_key", "jwt_secret_key")
    @classmethod
    def _production_needs_real_secrets(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("environment") != "production":
            return secret
        if secret is None:
            raise ValueError("is required in production")
        if looks_like_placeholder(secret.get_secret_value()):
            raise ValueError(f"looks like a placeholder; use at least {MIN_SECRET_LENGTH} random characters")
        return secret

    @field_validator("local_signin")
    @classmethod
    def _no_local_signin_in_production(cls, enabled: bool | None, info: ValidationInfo) -> bool:
        production = info.data.get("environment") == "production"
        if production and enabled:
            raise ValueError("the local sign-in is for development only and is refused in production")
        return not production if enabled is None else enabled

    @model_validator(mode="after")
    def _providers_are_complete(self) -> FrontendSettings:
        problems: list[str] = []
        for name, client_id, secret in (
            ("GOOGLE", self.google_client_id, self.google_client_secret),
            ("GITHUB", self.github_client_id, self.github_client_secret),
            ("OIDC", self.oidc_client_id, self.oidc_client_secret),
        ):
            if (client_id is None) != (secret is None):
                problems.append(f"{name}_CLIENT_ID and {name}_CLIENT_SECRET must be set together")
        if self.oidc_client_id is not None and self.oidc_discovery_url is None:
            problems.append("OIDC_DISCOVERY_URL is required with OIDC_CLIENT_ID")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # --- derived values ---

    @property
    def production(self) -> bool:
        return self.environment == "production"


def load_settings(**overrides: Any) -> FrontendSettings:
    """Read settings from the environment (and ``overrides``).

    Raises:
        ConfigurationError: with one message per invalid setting, naming the environment variable.
    """
    try:
        return FrontendSettings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError([describe_error(error) for error in exc.errors()]) from None


@lru_cache(maxsize=1)
def get_settings() -> FrontendSettings:
    return load_settings()
