"""The database pool's occupancy: healthy below 70 % of its capacity, warning below 90 %, critical from 90 %."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import event

from orchestrator.memory.db import Database, PoolStatus
from orchestrator.telemetry.metrics import DB_POOL_CAPACITY, DB_POOL_CHECKED_OUT, DB_POOL_OVERFLOW, DB_POOL_SIZE

WARNING_RATIO = 0.7
CRITICAL_RATIO = 0.9
PoolHealth = Literal["healthy", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class PoolReport:
    status: PoolStatus
    utilization: float
    health: PoolHealth


def assess(status: PoolStatus) -> PoolReport:
    utilization = status.checked_out / status.capacity if status.capacity else 0.0
    health: PoolHealth = "healthy"
    if utilization >= CRITICAL_RATIO:
        health = "critical"
    elif utilization >= WARNING_RATIO:
        health = "warning"
    return PoolReport(status, round(utilization, 4), health)


def publish_pool_metrics(status: PoolStatus) -> None:
    DB_POOL_SIZE.set(status.size)
    DB_POOL_CHECKED_OUT.set(status.checked_out)
    DB_POOL_OVERFLOW.set(status.overflow)
    DB_POOL_CAPACITY.set(status.capacity)


def watch_pool(database: Database) -> None:
    """Keep the pool gauges current: they change on every checkout and checkin, in this worker process."""
    publish_pool_metrics(database.pool_status())
    pool = database.sync_engine.pool

    def changed(*_args: Any) -> None:
        publish_pool_metrics(database.pool_status())

    event.listen(pool, "checkout", changed)
    event.listen(pool, "checkin", changed)
