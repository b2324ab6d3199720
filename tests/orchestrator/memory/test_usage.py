"""Token accounting in the store: per user, UTC day, conversation and model; kept when a conversation goes."""

from __future__ import annotations

from datetime import date, timedelta

from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import UserIdentity
from tests.orchestrator.memory.support import TickingClock


async def test_calls_of_one_day_add_up_per_conversation_and_model(
    store: SqlStore, user: UserIdentity, clock: TickingClock
) -> None:
    first = await store.create_conversation(user.id)
    second = await store.create_conversation(user.id)
    await store.record_usage(user.id, first.id, "gpt-a", 100, 10)
    await store.record_usage(user.id, first.id, "gpt-a", 50, 5)
    await store.record_usage(user.id, second.id, "gpt-b", 7, 3)
    today = clock.now.date()

    assert await store.tokens_used(user.id, today) == 175
    report = await store.usage_report(user.id, today, today)

    assert (report.total.prompt_tokens, report.total.completion_tokens, report.total.requests) == (157, 18, 3)
    assert [(row.key, row.total_tokens, row.requests) for row in report.by_model] == [
        ("gpt-a", 165, 2),
        ("gpt-b", 10, 1),
    ]
    assert [(row.key, row.total_tokens) for row in report.by_conversation] == [(first.id, 165), (second.id, 10)]
    assert [(row.key, row.total_tokens) for row in report.by_day] == [(today.isoformat(), 175)]
    assert report.by_user == []


async def test_a_new_utc_day_starts_from_zero(store: SqlStore, user: UserIdentity, clock: TickingClock) -> None:
    conversation = await store.create_conversation(user.id)
    await store.record_usage(user.id, conversation.id, "gpt-a", 100, 10)
    yesterday = clock.now.date()
    clock.now += timedelta(days=1)

    await store.record_usage(user.id, conversation.id, "gpt-a", 1, 1)

    assert await store.tokens_used(user.id, yesterday) == 110
    assert await store.tokens_used(user.id, yesterday + timedelta(days=1)) == 2
    report = await store.usage_report(user.id, yesterday, yesterday + timedelta(days=1))
    assert [(row.key, row.total_tokens) for row in report.by_day] == [
        (yesterday.isoformat(), 110),
        ((yesterday + timedelta(days=1)).isoformat(), 2),
    ]


async def test_usage_outlives_its_conversation(store: SqlStore, user: UserIdentity, clock: TickingClock) -> None:
    conversation = await store.create_conversation(user.id)
    await store.record_usage(user.id, conversation.id, "gpt-a", 40, 2)

    await store.delete_conversation(user.id, conversation.id)

    assert await store.tokens_used(user.id, clock.now.date()) == 42


async def test_one_users_usage_is_not_another_users_and_everyone_is_reported_by_user(
    store: SqlStore, user: UserIdentity, other_user: UserIdentity, clock: TickingClock
) -> None:
    mine = await store.create_conversation(user.id)
    theirs = await store.create_conversation(other_user.id)
    await store.record_usage(user.id, mine.id, "gpt-a", 10, 0)
    await store.record_usage(other_user.id, theirs.id, "gpt-a", 500, 0)
    today = clock.now.date()

    assert await store.tokens_used(user.id, today) == 10
    assert (await store.usage_report(user.id, today, today)).total.total_tokens == 10
    everyone = await store.usage_report(None, today, today, limit=1000)
    totals = {row.key: row.total_tokens for row in everyone.by_user}
    assert (totals[user.id], totals[other_user.id]) == (10, 500)
    assert everyone.by_conversation == []


async def test_an_empty_period_reports_zeros(store: SqlStore, user: UserIdentity) -> None:
    report = await store.usage_report(user.id, date(2001, 1, 1), date(2001, 1, 31))

    assert (report.total.total_tokens, report.by_model, report.by_day) == (0, [], [])
