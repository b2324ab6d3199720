"""The FastAPI application factory: routers, middleware, and the one place errors become HTTP."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import (  # pyright: ignore[reportMissingTypeStubs]
    SQLAlchemyInstrumentor,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from orchestrator import __version__
from orchestrator.api import (
    api_keys,
    authorizations,
    call_approvals,
    catalog,
    conversations,
    health,
    interactions,
    me,
    memories,
    monitoring,
    servers,
    tool_approvals,
    usage,
)
from orchestrator.errors import (
    AuthenticationFailed,
    ConfigurationError,
    Conflict,
    EmbeddingUnavailable,
    EventLogUnavailable,
    InvalidInput,
    InvalidParameter,
    MemoryDisabled,
    ModelError,
    ModelNotConfigured,
    ModelNotFound,
    NotFound,
    OrchestratorError,
    PermissionDenied,
    ServerAuthorizationFailed,
    ServerAuthorizationRequired,
    ServerUnavailable,
    TokenQuotaExceeded,
    ToolError,
    VectorStoreUnavailable,
)
from orchestrator.lifespan import lifespan
from orchestrator.mcp_server.endpoint import METHODS as MCP_METHODS
from orchestrator.mcp_server.endpoint import PATH as MCP_PATH
from orchestrator.mcp_server.endpoint import McpEndpoint, serving_mcp
from orchestrator.openai_api import completions
from orchestrator.openai_api.errors import is_openai_path, openai_error
from orchestrator.ratelimit import install_rate_limits
from orchestrator.settings import Settings, get_settings
from orchestrator.telemetry.http import HttpMetricsMiddleware
from orchestrator.telemetry.tracing import setup_tracing

logger = logging.getLogger(__name__)

_STATUS: list[tuple[type[OrchestratorError], int, str]] = [
    (ModelNotFound, 404, "model_not_found"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (AuthenticationFailed, 401, "unauthenticated"),
    (PermissionDenied, 403, "forbidden"),
    (InvalidInput, 422, "invalid_input"),
    (ConfigurationError, 422, "invalid_configuration"),
    (TokenQuotaExceeded, 429, "token_quota_exceeded"),
    (ModelNotConfigured, 503, "model_not_configured"),
    (ModelError, 502, "model_error"),
    (ServerAuthorizationRequired, 403, "authorization_required"),
    (ServerAuthorizationFailed, 502, "authorization_failed"),
    (ServerUnavailable, 503, "server_unavailable"),
    (EmbeddingUnavailable, 503, "embeddings_unavailable"),
    (MemoryDisabled, 503, "memory_disabled"),
    (VectorStoreUnavailable, 503, "vector_store_unavailable"),
    (EventLogUnavailable, 503, "event_log_unavailable"),
    (ToolError, 502, "server_error"),
]


def _error(request: Request, status_code: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    if is_openai_path(request.url.path):
        return openai_error(status_code, code, detail, param=extra.get("param"))
    headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
    return JSONResponse({"detail": detail, "code": code, **extra}, status_code=status_code, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    for error_type, status_code, code in _STATUS:
        if isinstance(exc, error_type):
            if isinstance(exc, InvalidParameter) and is_openai_path(request.url.path):
                return openai_error(400, exc.code or "invalid_value", str(exc), param=exc.param)
            return _error(request, status_code, code, str(exc))
    logger.error("unmapped domain error: %r", exc)
    return _error(request, 500, "internal_error", "internal error")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems: list[str] = []
    params: list[str] = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        params.append(location)
        if error.get("type") == "json_invalid":
            problems.append("the request body is not valid JSON")
        else:
            problems.append(f"{location}: {error.get('msg', 'invalid value')}")
    if is_openai_path(request.url.path):
        return openai_error(400, "invalid_request", "; ".join(problems), param=params[0] if params else None)
    return _error(request, 422, "invalid_request", "; ".join(problems), errors=problems)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
    }
    return _error(request, exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return _error(request, 500, "internal_error", "internal error")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the orchestrator's ASGI app from ``settings`` (read from the environment when not given)."""
    settings = settings or get_settings()
    mcp_endpoint = McpEndpoint(max_request_bytes=settings.max_request_bytes)
    app = FastAPI(
        title="MCP Assistant orchestrator",
        version=__version__,
        summary="Runs OpenAI tool-calling conversations against tools from MCP servers.",
        lifespan=serving_mcp(lifespan(settings), mcp_endpoint),
        max_body_size=settings.max_request_bytes,
    )
    app.add_exception_handler(OrchestratorError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.include_router(health.router)
    app.include_router(me.router)
    app.include_router(servers.router)
    app.include_router(authorizations.router)
    app.include_router(catalog.router)
    app.include_router(interactions.router)
    app.include_router(call_approvals.router)
    app.include_router(tool_approvals.router)
    app.include_router(conversations.router)
    app.include_router(memories.router)
    app.include_router(usage.router)
    app.include_router(api_keys.router)
    app.include_router(completions.router)
    app.router.routes.append(Route(MCP_PATH, mcp_endpoint, methods=MCP_METHODS, include_in_schema=False))
    app.include_router(monitoring.router)
    install_rate_limits(app, settings)
    if settings.metrics_enabled:
        app.include_router(monitoring.metrics_router)
        # Added last, so outermost: requests refused by the rate limits are counted too.
        app.add_middleware(HttpMetricsMiddleware, skip=lambda path: path == "/metrics")
    if settings.otel_enabled:
        _trace(app, settings)
    return app


def _trace(app: FastAPI, settings: Settings) -> None:
    """One trace per request: the request's span, and beneath it the turn, model, tool, database and Redis spans."""
    setup_tracing(settings.otel_service_name, settings.otel_exporter_otlp_endpoint, environment=settings.environment)
    # Database and Redis clients are instrumented process-wide, before the lifespan creates them.
    # The SQLAlchemy instrumentation declares support up to 2.0 only; it hooks engine events, which 2.1 keeps.
    for instrumentor in (SQLAlchemyInstrumentor(), RedisInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(skip_dep_check=True)  # pyright: ignore[reportUnknownMemberType] - untyped
    FastAPIInstrumentor.instrument_app(app, excluded_urls="/health/.*,/metrics")
