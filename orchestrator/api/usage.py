"""``GET /api/usage``: tokens spent per model, day and conversation; admins see every user."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from orchestrator.api.schemas import error_responses
from orchestrator.deps import CurrentCaller, State
from orchestrator.errors import InvalidInput, PermissionDenied
from orchestrator.memory.usage import UsageTotals

router = APIRouter(prefix="/api", tags=["usage"])

MAX_DAYS = 366


class UsageRowOut(BaseModel):
    key: str = Field(description="the model, day (YYYY-MM-DD), conversation id or user id of the row")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    requests: int = Field(description="model calls")


class QuotaOut(BaseModel):
    user_id: str
    daily_limit: int | None = Field(description="tokens per UTC day; null: no limit")
    used_today: int
    remaining_today: int | None
    resets_at: datetime


class UsageOut(BaseModel):
    scope: str = Field(description="the user id, or 'all' for an admin's view of everyone")
    since: date
    until: date
    total: UsageRowOut
    by_model: list[UsageRowOut]
    by_day: list[UsageRowOut]
    by_conversation: list[UsageRowOut] = Field(description="one user's conversations, most tokens first")
    by_user: list[UsageRowOut] = Field(description="with all=true (admins): users, most tokens first")
    quota: QuotaOut | None = Field(description="the daily quota of the user in scope")


def _row(totals: UsageTotals) -> UsageRowOut:
    return UsageRowOut(
        key=totals.key,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        total_tokens=totals.total_tokens,
        requests=totals.requests,
    )


@router.get("/usage", responses=error_responses(401, 403, 422))
async def get_usage(
    state: State,
    caller: CurrentCaller,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="this many UTC days, today included")] = 30,
    user_id: Annotated[str | None, Query(max_length=255, description="another user's usage (admins)")] = None,
    all_users: Annotated[bool, Query(alias="all", description="everyone's usage (admins)")] = False,
) -> UsageOut:
    """Your token usage (prompt and completion tokens, model calls) and daily quota; admins may ask for anyone's."""
    if ((user_id is not None and user_id != caller.user.id) or all_users) and not caller.is_admin:
        raise PermissionDenied("only admins (ADMIN_USERS) may see other users' usage")
    if all_users and user_id is not None:
        raise InvalidInput("ask for one user_id or for all, not both")
    subject = None if all_users else (user_id or caller.user.id)
    today = datetime.now(UTC).date()
    since = today - timedelta(days=days - 1)
    report = await state.store.usage_report(subject, since, today)
    quota: QuotaOut | None = None
    if subject is not None:
        limit = state.meter.quota(subject)
        used = await state.store.tokens_used(subject, today)
        quota = QuotaOut(
            user_id=subject,
            daily_limit=limit,
            used_today=used,
            remaining_today=None if limit is None else max(0, limit - used),
            resets_at=datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC),
        )
    return UsageOut(
        scope=subject or "all",
        since=report.since,
        until=report.until,
        total=_row(report.total),
        by_model=[_row(row) for row in report.by_model],
        by_day=[_row(row) for row in report.by_day],
        by_conversation=[_row(row) for row in report.by_conversation],
        by_user=[_row(row) for row in report.by_user],
        quota=quota,
    )
