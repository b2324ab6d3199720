"""Liveness, readiness, start-up and a detailed report for people."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from orchestrator.cluster.redis import redis_status
from orchestrator.deps import State

router = APIRouter(prefix="/health", tags=["health"])
logger = logging.getLogger(__name__)

DB_PING_TIMEOUT_SECONDS = 3.0


async def _database_status(state: State) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with anyio.fail_after(DB_PING_TIMEOUT_SECONDS):
            await state.store.ping()
    except Exception as exc:  # any failure means "not ready"; the reason is reported, not raised
        logger.warning("database ping failed: %s", exc)
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is running."""
    return {"status": "ok"}


@router.get("/startup")
async def startup(state: State) -> JSONResponse:
    """Start-up has finished: migrations ran and every MCP server had its first connection attempt."""
    if not state.registry.settled:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(state: State) -> JSONResponse:
    """The service can take traffic: the database answers. MCP servers being down does not make it unready."""
    database = await _database_status(state)
    status_code = 200 if database["status"] == "up" else 503
    return JSONResponse({"status": "ok" if status_code == 200 else "unavailable", "database": database}, status_code)


@router.get("/detailed")
async def detailed(state: State) -> JSONResponse:
    """Database, model and every MCP server, for people and dashboards."""
    database = await _database_status(state)
    settings = state.settings
    model: dict[str, Any]
    if state.model.configured:
        endpoint = urlsplit(settings.openai_base_url).netloc if settings.openai_base_url else "api.openai.com"
        model = {"status": "configured", "model": settings.openai_model, "endpoint": endpoint}
    else:
        model = {
            "status": "not configured",
            "detail": "no model configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for other endpoints)",
        }
    servers = [
        {
            "id": server.id,
            "transport": server.transport,
            "status": server.status,
            "tool_count": server.tool_count,
            "last_error": server.last_error,
            "failed_attempts": server.failed_attempts,
        }
        for server in state.registry.servers()
    ]
    healthy = sum(1 for server in servers if server["status"] == "healthy")
    redis = await redis_status(state.redis, timeout_seconds=settings.redis_timeout_seconds)
    degraded = (
        database["status"] != "up" or not state.model.configured or healthy < len(servers) or redis["status"] == "down"
    )
    body = {
        "status": "unavailable" if database["status"] != "up" else ("degraded" if degraded else "ok"),
        "environment": settings.environment,
        "uptime_seconds": round(time.monotonic() - state.started_at, 1),
        "database": database,
        "redis": redis,
        "model": model,
        "mcp_servers": servers,
        "memory": {
            "status": "on" if state.memories is not None else "off",
            "store": "qdrant server" if settings.vector_db_url else "embedded",
            "embeddings": settings.resolved_embeddings_provider,
        },
        "tool_retrieval": {
            "status": "on" if settings.tool_retrieval_enabled else "off",
            "top_k": settings.tool_retrieval_top_k,
            "min_tools": settings.tool_retrieval_min_tools,
        },
        "active_turns": len(state.turns),
    }
    return JSONResponse(body, status_code=200 if database["status"] == "up" else 503)
