import asyncio

import pytest

from orchestrator.errors import ConversationNotFound
from orchestrator.memory.db import Database
from orchestrator.memory.store import DEFAULT_TITLE, SqlStore
from orchestrator.memory.types import MessageRecord, NewMessage, UserIdentity
from tests.orchestrator.memory.support import counting_statements

CONCURRENT_WRITERS = 10


def said(content: str) -> NewMessage:
    return NewMessage(role="user", content=content)


async def test_a_turn_returns_the_history_before_its_message_and_stores_the_message(
    store: SqlStore, user: UserIdentity
) -> None:
    conversation = await store.create_conversation(user.id)
    earlier = await store.append_messages(
        user.id, conversation.id, [said("hi"), NewMessage(role="assistant", content="hello")]
    )

    history, message = await store.start_turn(user.id, conversation.id, said("how are you?"), title=None)

    assert history == earlier
    assert (message.seq, message.role, message.content) == (3, "user", "how are you?")
    assert await store.list_messages(user.id, conversation.id) == [*earlier, message]


async def test_the_first_turn_of_a_conversation_has_no_history(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)

    history, message = await store.start_turn(user.id, conversation.id, said("hi"), title=None)

    assert history == []
    assert message.seq == 1


async def test_a_turn_touches_updated_at(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)

    _, message = await store.start_turn(user.id, conversation.id, said("hi"), title=None)

    assert (await store.get_conversation(user.id, conversation.id)).updated_at == message.created_at
    assert message.created_at > conversation.updated_at


async def test_the_first_message_names_a_conversation_with_the_default_title(
    store: SqlStore, user: UserIdentity
) -> None:
    conversation = await store.create_conversation(user.id)

    await store.start_turn(user.id, conversation.id, said("Plan a trip"), title="Plan a trip")

    assert (await store.get_conversation(user.id, conversation.id)).title == "Plan a trip"


async def test_a_later_message_does_not_rename_the_conversation(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)
    await store.start_turn(user.id, conversation.id, said("hi"), title=None)

    await store.start_turn(user.id, conversation.id, said("Plan a trip"), title="Plan a trip")

    assert (await store.get_conversation(user.id, conversation.id)).title == DEFAULT_TITLE


async def test_a_conversation_that_has_a_title_keeps_it(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id, "Holidays")

    await store.start_turn(user.id, conversation.id, said("Plan a trip"), title="Plan a trip")

    assert (await store.get_conversation(user.id, conversation.id)).title == "Holidays"


async def test_a_turn_in_another_users_conversation_is_not_found_and_writes_nothing(
    store: SqlStore, user: UserIdentity, other_user: UserIdentity
) -> None:
    conversation = await store.create_conversation(user.id)

    with pytest.raises(ConversationNotFound):
        await store.start_turn(other_user.id, conversation.id, said("injected"), title="stolen")

    assert await store.get_conversation(user.id, conversation.id) == conversation
    assert await store.list_messages(user.id, conversation.id) == []
    _, message = await store.start_turn(user.id, conversation.id, said("hi"), title=None)
    assert message.seq == 1


async def test_concurrent_turns_and_appends_get_distinct_seq_numbers(store: SqlStore, user: UserIdentity) -> None:
    conversation = await store.create_conversation(user.id)

    async def turn(index: int) -> list[MessageRecord]:
        history, message = await store.start_turn(user.id, conversation.id, said(f"turn {index}"), title=f"{index}")
        assert [m.seq for m in history] == list(range(1, message.seq))
        return [message]

    async def append(index: int) -> list[MessageRecord]:
        pair = [said(f"append {index}"), NewMessage(role="assistant", content=f"reply {index}")]
        return await store.append_messages(user.id, conversation.id, pair)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(write(index)) for index in range(CONCURRENT_WRITERS) for write in (turn, append)]

    seqs = sorted(m.seq for task in tasks for m in task.result())
    assert seqs == list(range(1, 3 * CONCURRENT_WRITERS + 1))
    assert [m.seq for m in await store.list_messages(user.id, conversation.id)] == seqs


async def test_a_turn_starts_in_three_statements_or_two_on_postgresql(
    store: SqlStore, database: Database, user: UserIdentity
) -> None:
    conversation = await store.create_conversation(user.id)
    await store.append_messages(user.id, conversation.id, [said("hi")])

    with counting_statements(database.sync_engine) as statements:
        await store.start_turn(user.id, conversation.id, said("again"), title="again")

    assert len(statements) == (2 if database.dialect == "postgresql" else 3)
