import asyncio
from datetime import UTC, datetime, timedelta, timezone

from orchestrator.memory.db import Database
from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import ConversationRecord, NewMessage, ToolCallRecord, UserIdentity
from tests.orchestrator.memory.support import counting_statements

CONCURRENT_APPENDS = 20
CONVERSATIONS = 10


async def test_every_message_field_survives_the_round_trip(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)
    started = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    sent = [
        NewMessage(role="user", content="What's the weather in Zürich? ☀️"),
        NewMessage(
            role="assistant",
            content="",
            status="incomplete",
            tool_calls=[
                ToolCallRecord(id="call_1", name="weather__forecast", arguments='{"city": "Zürich", "days": 2}'),
                ToolCallRecord(id="call_2", name="time__now", arguments="{ not even json"),
            ],
            model="gpt-4o-mini",
            prompt_tokens=321,
            completion_tokens=45,
            started_at=started,
            duration_ms=1234,
            error="stream cut off",
        ),
        NewMessage(
            role="tool",
            content="boom",
            status="error",
            tool_call_id="call_1",
            tool_name="weather__forecast",
            is_error=True,
        ),
    ]

    appended = await store.append_messages(user.id, conversation.id, sent)
    listed = await store.list_messages(user.id, conversation.id)

    assert listed == appended
    for stored, original in zip(listed, sent, strict=True):
        assert stored.conversation_id == conversation.id
        assert (stored.role, stored.content, stored.status) == (original.role, original.content, original.status)
        assert tuple(stored.tool_calls) == tuple(original.tool_calls)
        assert (stored.tool_call_id, stored.tool_name, stored.is_error) == (
            original.tool_call_id,
            original.tool_name,
            original.is_error,
        )
        assert (stored.model, stored.prompt_tokens, stored.completion_tokens) == (
            original.model,
            original.prompt_tokens,
            original.completion_tokens,
        )
        assert (stored.started_at, stored.duration_ms, stored.error) == (
            original.started_at,
            original.duration_ms,
            original.error,
        )
        assert stored.created_at.tzinfo is not None
    assert listed[1].started_at is not None
    assert listed[1].started_at.utcoffset() == timedelta(0)


async def test_a_new_conversation_has_no_messages(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)

    assert await store.list_messages(user.id, conversation.id) == []


async def test_messages_list_in_the_order_they_were_appended(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)

    for batch in (["1"], ["2", "3"], ["4"], ["5", "6", "7"]):
        await store.append_messages(user.id, conversation.id, [NewMessage(role="user", content=c) for c in batch])

    listed = await store.list_messages(user.id, conversation.id)
    assert [m.content for m in listed] == ["1", "2", "3", "4", "5", "6", "7"]
    assert [m.seq for m in listed] == [1, 2, 3, 4, 5, 6, 7]


async def test_appending_touches_updated_at(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)

    [message] = await store.append_messages(user.id, conversation.id, [NewMessage(role="user", content="hi")])

    assert (await store.get_conversation(user.id, conversation.id)).updated_at == message.created_at
    assert message.created_at > conversation.updated_at


async def test_appending_nothing_changes_nothing(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)

    assert await store.append_messages(user.id, conversation.id, []) == []
    assert await store.get_conversation(user.id, conversation.id) == conversation


async def test_concurrent_appends_get_distinct_consecutive_seq_numbers(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)

    async def append_pair(index: int) -> list[int]:
        pair = [NewMessage(role="user", content=f"{index}-a"), NewMessage(role="assistant", content=f"{index}-b")]
        return [m.seq for m in await store.append_messages(user.id, conversation.id, pair)]

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(append_pair(index)) for index in range(CONCURRENT_APPENDS)]

    pairs = [task.result() for task in tasks]
    assert all(second == first + 1 for first, second in pairs)
    assert sorted(seq for pair in pairs for seq in pair) == list(range(1, 2 * CONCURRENT_APPENDS + 1))
    listed = await store.list_messages(user.id, conversation.id)
    assert [m.seq for m in listed] == list(range(1, 2 * CONCURRENT_APPENDS + 1))


async def test_appends_to_different_conversations_number_independently(store: SqlStore, user: UserIdentity) -> None:
    conversations: list[ConversationRecord] = [await store.create_conversation(user.id) for _ in range(2)]

    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(store.append_messages(user.id, c.id, [NewMessage(role="user", content="x")] * 2))
            for c in conversations
        ]

    assert [[m.seq for m in task.result()] for task in tasks] == [[1, 2], [1, 2]]


async def test_many_concurrent_appends_across_conversations_all_succeed(store: SqlStore, user: UserIdentity) -> None:
    conversations = [await store.create_conversation(user.id) for _ in range(CONVERSATIONS)]

    async with asyncio.TaskGroup() as group:
        for index in range(5 * CONVERSATIONS):
            conversation = conversations[index % CONVERSATIONS]
            group.create_task(store.append_messages(user.id, conversation.id, [NewMessage(role="user", content="x")]))

    for conversation in conversations:
        assert [m.seq for m in await store.list_messages(user.id, conversation.id)] == [1, 2, 3, 4, 5]


async def test_an_append_is_two_statements_and_a_listing_one(
    store: SqlStore, database: Database, user: UserIdentity
) -> None:
    conversation = await store.create_conversation(user.id)
    batch = [NewMessage(role="assistant", content="a"), NewMessage(role="tool", content="b", tool_call_id="c")]

    with counting_statements(database.sync_engine) as appending:
        await store.append_messages(user.id, conversation.id, batch)
    with counting_statements(database.sync_engine) as listing:
        await store.list_messages(user.id, conversation.id)

    assert len(appending) == 2
    assert len(listing) == 1


async def test_a_single_message_is_appended_in_one_statement_on_postgresql(
    store: SqlStore, database: Database, user: UserIdentity
) -> None:
    conversation = await store.create_conversation(user.id)

    with counting_statements(database.sync_engine) as appending:
        [record] = await store.append_messages(user.id, conversation.id, [NewMessage(role="assistant", content="a")])

    assert len(appending) == (1 if database.dialect == "postgresql" else 2)
    assert (await store.list_messages(user.id, conversation.id)) == [record]


async def test_naive_timestamps_are_taken_as_utc(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)
    naive = datetime(2026, 5, 1, 8, 0)

    await store.append_messages(user.id, conversation.id, [NewMessage(role="user", started_at=naive)])

    [message] = await store.list_messages(user.id, conversation.id)
    assert message.started_at == naive.replace(tzinfo=UTC)
