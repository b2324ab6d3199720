from collections.abc import Awaitable, Callable
from datetime import timedelta
from uuid import uuid4

import pytest
from sqlalchemy import Connection, func, select, text

from orchestrator.errors import ConversationNotFound
from orchestrator.memory.db import Database
from orchestrator.memory.models import Message, User
from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import NewMessage, UserIdentity
from tests.orchestrator.memory.support import TickingClock

StoreCall = Callable[[SqlStore, str, str], Awaitable[object]]

# Every method that takes a conversation id, called as (store, user_id, conversation_id).
CONVERSATION_METHODS: dict[str, StoreCall] = {
    "get_conversation": lambda store, user_id, conversation_id: store.get_conversation(user_id, conversation_id),
    "rename_conversation": lambda store, user_id, conversation_id: store.rename_conversation(
        user_id, conversation_id, "mine now"
    ),
    "delete_conversation": lambda store, user_id, conversation_id: store.delete_conversation(user_id, conversation_id),
    "list_messages": lambda store, user_id, conversation_id: store.list_messages(user_id, conversation_id),
    "append_messages": lambda store, user_id, conversation_id: store.append_messages(
        user_id, conversation_id, [NewMessage(role="user", content="injected")]
    ),
    "append_no_messages": lambda store, user_id, conversation_id: store.append_messages(user_id, conversation_id, []),
    "start_turn": lambda store, user_id, conversation_id: store.start_turn(
        user_id, conversation_id, NewMessage(role="user", content="injected"), title="stolen"
    ),
}


async def message_count(database: Database, conversation_id: str) -> int:
    statement = select(func.count()).select_from(Message).where(Message.conversation_id == conversation_id)
    return await database.run(lambda connection: connection.execute(statement).scalar_one())


async def test_a_new_conversation_without_a_title_is_called_new_conversation(
    store: SqlStore, user: UserIdentity
) -> None:
    created = await store.create_conversation(user.id)

    assert created.title == "New conversation"
    assert created.user_id == user.id
    assert created.created_at == created.updated_at
    assert created.created_at.tzinfo is not None
    assert await store.get_conversation(user.id, created.id) == created


async def test_a_conversation_keeps_the_title_it_was_created_with(store: SqlStore, user: UserIdentity) -> None:
    created = await store.create_conversation(user.id, "Trip planning")

    assert (await store.get_conversation(user.id, created.id)).title == "Trip planning"


async def test_conversations_list_most_recently_updated_first(store: SqlStore, user: UserIdentity) -> None:
    first = await store.create_conversation(user.id, "first")
    second = await store.create_conversation(user.id, "second")
    third = await store.create_conversation(user.id, "third")

    await store.append_messages(user.id, first.id, [NewMessage(role="user", content="bump")])

    listed = await store.list_conversations(user.id)
    assert [c.id for c in listed] == [first.id, third.id, second.id]
    assert listed[0].updated_at > listed[0].created_at


async def test_conversations_updated_at_the_same_instant_are_ordered_by_id(
    store: SqlStore, user: UserIdentity, clock: TickingClock
) -> None:
    clock.step = timedelta(0)
    created = [await store.create_conversation(user.id) for _ in range(3)]

    listed = await store.list_conversations(user.id)

    assert [c.id for c in listed] == sorted(c.id for c in created)


async def test_conversations_page_with_limit_and_offset(store: SqlStore, user: UserIdentity) -> None:
    created = [await store.create_conversation(user.id, f"c{i}") for i in range(5)]
    newest_first = [c.id for c in reversed(created)]

    first_page = await store.list_conversations(user.id, limit=2)
    second_page = await store.list_conversations(user.id, limit=2, offset=2)
    past_the_end = await store.list_conversations(user.id, limit=2, offset=5)

    assert [c.id for c in first_page + second_page] == newest_first[:4]
    assert past_the_end == []


async def test_a_user_lists_only_their_own_conversations(
    store: SqlStore, user: UserIdentity, other_user: UserIdentity
) -> None:
    mine = await store.create_conversation(user.id)
    await store.create_conversation(other_user.id)

    assert [c.id for c in await store.list_conversations(user.id)] == [mine.id]


async def test_renaming_changes_the_title_but_not_the_order(store: SqlStore, user: UserIdentity) -> None:
    older = await store.create_conversation(user.id, "older")
    newer = await store.create_conversation(user.id, "newer")

    renamed = await store.rename_conversation(user.id, older.id, "Renamed")

    assert renamed == await store.get_conversation(user.id, older.id)
    assert renamed.title == "Renamed"
    assert [c.id for c in await store.list_conversations(user.id)] == [newer.id, older.id]


async def test_deleting_a_conversation_deletes_its_messages(
    store: SqlStore, database: Database, user: UserIdentity
) -> None:
    conversation = await store.create_conversation(user.id)
    await store.append_messages(user.id, conversation.id, [NewMessage(role="user", content="hi")] * 3)

    await store.delete_conversation(user.id, conversation.id)

    assert await message_count(database, conversation.id) == 0
    with pytest.raises(ConversationNotFound):
        await store.get_conversation(user.id, conversation.id)


@pytest.mark.parametrize("call", CONVERSATION_METHODS.values(), ids=CONVERSATION_METHODS.keys())
async def test_another_users_conversation_is_not_found_and_not_touched(
    store: SqlStore, database: Database, user: UserIdentity, other_user: UserIdentity, call: StoreCall
) -> None:
    conversation = await store.create_conversation(user.id, "private")
    await store.append_messages(user.id, conversation.id, [NewMessage(role="user", content="secret")])
    before = await store.get_conversation(user.id, conversation.id)

    with pytest.raises(ConversationNotFound):
        await call(store, other_user.id, conversation.id)

    assert await store.get_conversation(user.id, conversation.id) == before
    assert [m.content for m in await store.list_messages(user.id, conversation.id)] == ["secret"]


@pytest.mark.parametrize("call", CONVERSATION_METHODS.values(), ids=CONVERSATION_METHODS.keys())
async def test_a_missing_conversation_is_not_found(store: SqlStore, user: UserIdentity, call: StoreCall) -> None:
    with pytest.raises(ConversationNotFound):
        await call(store, user.id, "00000000-0000-0000-0000-000000000000")


async def test_ensure_user_creates_the_user_then_refreshes_name_and_email(store: SqlStore, database: Database) -> None:
    user_id = f"sub-{uuid4().hex}"
    await store.ensure_user(UserIdentity(id=user_id, name="Old", email="old@example.com"))
    await store.ensure_user(UserIdentity(id=user_id, name="New", email=None))

    statement = select(User.name, User.email).where(User.id == user_id)
    row = await database.run(lambda connection: connection.execute(statement).one())
    assert tuple(row) == ("New", None)


# Row versions (xmin) are a PostgreSQL notion, so this one runs there only.
@pytest.mark.postgres
@pytest.mark.parametrize("databases", ["postgresql"], indirect=True)
async def test_ensure_user_with_nothing_changed_does_not_rewrite_the_row(
    store: SqlStore, database: Database, user: UserIdentity
) -> None:
    def row_version(connection: Connection) -> str:
        return connection.execute(text("SELECT xmin::text FROM users WHERE id = :id"), {"id": user.id}).scalar_one()

    before = await database.run(row_version)

    await store.ensure_user(user)

    assert await database.run(row_version) == before


async def test_a_first_conversation_of_an_unknown_user_creates_the_user(store: SqlStore) -> None:
    user_id = f"sub-{uuid4().hex}"

    conversation = await store.create_conversation(user_id)

    assert await store.list_conversations(user_id) == [conversation]
