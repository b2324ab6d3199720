"""``GET /metrics`` for Prometheus, and the database pool's status for people and probes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from orchestrator.api.schemas import error_responses
from orchestrator.deps import CurrentCaller, State
from orchestrator.telemetry.dbpool import CRITICAL_RATIO, WARNING_RATIO, assess, publish_pool_metrics
from orchestrator.telemetry.http import exposition, forwarded_by_a_proxy

router = APIRouter(tags=["monitoring"])
metrics_router = APIRouter(tags=["monitoring"])


class DbPoolStatusOut(BaseModel):
    backend: Literal["sqlite", "postgresql"]
    status: Literal["healthy", "warning", "critical"] = Field(
        description=f"healthy below {WARNING_RATIO:.0%} of capacity in use, warning below {CRITICAL_RATIO:.0%}, "
        "else critical"
    )
    utilization: float = Field(description="checked_out / capacity")
    size: int
    checked_out: int
    overflow: int
    capacity: int
    warning_threshold: float = WARNING_RATIO
    critical_threshold: float = CRITICAL_RATIO


@metrics_router.get("/metrics", include_in_schema=False)
async def metrics(state: State, request: Request) -> Response:
    """Prometheus text format; with PROMETHEUS_MULTIPROC_DIR, the sum over every worker process.

    Not found for requests a proxy forwarded: Prometheus scrapes the service directly.
    """
    if forwarded_by_a_proxy(request.headers.keys()):
        return Response(status_code=status.HTTP_404_NOT_FOUND)
    publish_pool_metrics(state.store.pool_status())
    body, content_type = exposition()
    return Response(body, media_type=content_type)


@router.get("/api/monitoring/db-pool-status", responses=error_responses(401))
async def db_pool_status(state: State, _caller: CurrentCaller) -> DbPoolStatusOut:
    """How full this replica's database connection pool is."""
    report = assess(state.store.pool_status())
    pool = report.status
    return DbPoolStatusOut(
        backend=pool.backend,
        status=report.health,
        utilization=report.utilization,
        size=pool.size,
        checked_out=pool.checked_out,
        overflow=pool.overflow,
        capacity=pool.capacity,
    )
