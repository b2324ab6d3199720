"""The SQL of token accounting (table ``token_usage``): record a model call, read a day's total, build reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from orchestrator.memory.models import TokenUsage


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Tokens and model calls of one group (a model, a day, a user or a conversation: ``key``)."""

    key: str
    prompt_tokens: int
    completion_tokens: int
    requests: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class UsageReport:
    since: date
    until: date
    total: UsageTotals
    by_model: list[UsageTotals]
    by_day: list[UsageTotals]
    by_conversation: list[UsageTotals]
    by_user: list[UsageTotals]


class UsageStore(Protocol):
    async def record_usage(
        self, user_id: str, conversation_id: str, model: str, prompt_tokens: int, completion_tokens: int
    ) -> None:
        """Add one model call's tokens to today's (UTC) row of the user, conversation and model."""
        ...

    async def tokens_used(self, user_id: str, day: date) -> int:
        """Prompt plus completion tokens the user spent on ``day`` (UTC)."""
        ...

    async def usage_report(self, user_id: str | None, since: date, until: date, *, limit: int = 100) -> UsageReport:
        """Usage from ``since`` to ``until`` (inclusive) of one user, or of everyone with ``user_id=None``."""
        ...


def _add_usage(dialect_insert: Any) -> Any:
    statement = dialect_insert(TokenUsage)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[TokenUsage.user_id, TokenUsage.day, TokenUsage.conversation_id, TokenUsage.model],
        set_={
            "prompt_tokens": TokenUsage.prompt_tokens + excluded.prompt_tokens,
            "completion_tokens": TokenUsage.completion_tokens + excluded.completion_tokens,
            "requests": TokenUsage.requests + excluded.requests,
            "updated_at": excluded.updated_at,
        },
    )


_ADD_USAGE = {"postgresql": _add_usage(postgresql.insert), "sqlite": _add_usage(sqlite.insert)}
_TOTAL = TokenUsage.prompt_tokens + TokenUsage.completion_tokens
_TOKENS_USED = select(func.coalesce(func.sum(_TOTAL), 0)).where(
    TokenUsage.user_id == bindparam("owner"), TokenUsage.day == bindparam("on_day")
)


def record_usage(
    connection: Connection,
    user_id: str,
    conversation_id: str,
    model: str,
    day: date,
    prompt_tokens: int,
    completion_tokens: int,
    now: datetime,
) -> None:
    connection.execute(
        _ADD_USAGE[connection.dialect.name],
        {
            "user_id": user_id,
            "day": day,
            "conversation_id": conversation_id,
            "model": model[:255],
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "requests": 1,
            "updated_at": now,
        },
    )


def tokens_used(connection: Connection, user_id: str, day: date) -> int:
    return int(connection.execute(_TOKENS_USED, {"owner": user_id, "on_day": day}).scalar_one())


def usage_report(connection: Connection, user_id: str | None, since: date, until: date, limit: int) -> UsageReport:
    """Four grouped queries; conversations are listed for one user only, users for everyone only."""
    where: list[ColumnElement[bool]] = [TokenUsage.day >= since, TokenUsage.day <= until]
    if user_id is not None:
        where.append(TokenUsage.user_id == user_id)
    sums = (
        func.coalesce(func.sum(TokenUsage.prompt_tokens), 0),
        func.coalesce(func.sum(TokenUsage.completion_tokens), 0),
        func.coalesce(func.sum(TokenUsage.requests), 0),
    )

    def grouped(column: Any, *, order_by_total: bool) -> list[UsageTotals]:
        query = select(column, *sums).where(*where).group_by(column)
        if order_by_total:
            query = query.order_by(func.sum(_TOTAL).desc(), column).limit(limit)
        else:
            query = query.order_by(column)
        return [UsageTotals(str(key), int(p), int(c), int(r)) for key, p, c, r in connection.execute(query)]

    prompt, completion, requests = connection.execute(select(*sums).where(*where)).one()
    return UsageReport(
        since=since,
        until=until,
        total=UsageTotals("total", int(prompt), int(completion), int(requests)),
        by_model=grouped(TokenUsage.model, order_by_total=True),
        by_day=grouped(TokenUsage.day, order_by_total=False),
        by_conversation=grouped(TokenUsage.conversation_id, order_by_total=True) if user_id is not None else [],
        by_user=grouped(TokenUsage.user_id, order_by_total=True) if user_id is None else [],
    )
