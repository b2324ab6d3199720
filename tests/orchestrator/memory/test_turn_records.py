"""The turns table: started with the user's message, kept alive by its replica, taken over by exactly one other."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import uuid4

from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import NewMessage, NewTurn, UserIdentity
from tests.orchestrator.memory.support import TickingClock


async def started_turn(store: SqlStore, user: UserIdentity, owner: str = "replica-a") -> tuple[str, str, str]:
    """A conversation with a running turn: (conversation id, turn id, user message id)."""
    conversation = await store.create_conversation(user.id)
    turn_id = str(uuid4())
    _, message = await store.start_turn(
        user.id, conversation.id, NewMessage(role="user", content="hi"), title=None, turn=NewTurn(turn_id, owner)
    )
    return conversation.id, turn_id, message.id


async def test_a_turn_is_stored_running_with_its_user_message(store: SqlStore, user: UserIdentity) -> None:
    conversation, turn_id, message_id = await started_turn(store, user)

    turn = await store.latest_turn(user.id, conversation)

    assert turn is not None
    assert (turn.id, turn.user_message_id, turn.status, turn.owner, turn.attempts) == (
        turn_id,
        message_id,
        "running",
        "replica-a",
        1,
    )
    assert [m.id for m in await store.list_messages(user.id, conversation)] == [message_id]


async def test_another_users_turn_is_invisible(store: SqlStore, user: UserIdentity, other_user: UserIdentity) -> None:
    conversation, _, _ = await started_turn(store, user)

    assert await store.latest_turn(other_user.id, conversation) is None


async def test_the_latest_turn_is_the_newest_and_an_ended_turn_stays_ended(store: SqlStore, user: UserIdentity) -> None:
    conversation, first, _ = await started_turn(store, user)
    await store.end_turn(first, "replica-a", "complete")
    second = str(uuid4())
    await store.start_turn(
        user.id, conversation, NewMessage(role="user", content="again"), title=None, turn=NewTurn(second, "b")
    )
    await store.end_turn(second, "b", "incomplete")
    await store.end_turn(second, "b", "complete")  # only a running turn changes

    latest = await store.latest_turn(user.id, conversation)

    assert latest is not None
    assert (latest.id, latest.status) == (second, "incomplete")


async def test_only_the_owner_beats_a_running_turns_heart(store: SqlStore, user: UserIdentity) -> None:
    conversation, turn_id, _ = await started_turn(store, user)
    before = await store.latest_turn(user.id, conversation)

    assert await store.beat_turn(turn_id, "replica-a")
    assert not await store.beat_turn(turn_id, "replica-b")
    after = await store.latest_turn(user.id, conversation)
    assert before is not None
    assert after is not None
    assert after.heartbeat_at > before.heartbeat_at
    await store.end_turn(turn_id, "replica-b", "complete")  # not its turn: nothing changes
    assert await store.beat_turn(turn_id, "replica-a")
    await store.end_turn(turn_id, "replica-a", "complete")
    assert not await store.beat_turn(turn_id, "replica-a")


async def test_a_stale_turn_is_claimed_by_exactly_one_replica(
    store: SqlStore, user: UserIdentity, clock: TickingClock
) -> None:
    conversation, turn_id, _ = await started_turn(store, user)
    clock.now += timedelta(minutes=1)  # the replica has been dead for a minute
    stale_before = clock.now - timedelta(seconds=30)

    assert turn_id in {turn.id for turn in await store.stale_turns(stale_before)}
    claims = await asyncio.gather(*(store.claim_turn(turn_id, f"replica-{n}", stale_before) for n in range(5)))

    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1
    assert (winners[0].attempts, winners[0].status) == (2, "running")
    latest = await store.latest_turn(user.id, conversation)
    assert latest is not None
    assert latest.owner == winners[0].owner


async def test_a_turn_with_a_fresh_heartbeat_is_not_claimed(
    store: SqlStore, user: UserIdentity, clock: TickingClock
) -> None:
    _, turn_id, _ = await started_turn(store, user)
    stale_before = clock.now - timedelta(seconds=30)

    assert turn_id not in {turn.id for turn in await store.stale_turns(stale_before)}
    assert await store.claim_turn(turn_id, "replica-b", stale_before) is None


async def test_deleting_the_conversation_deletes_its_turns(
    store: SqlStore, user: UserIdentity, clock: TickingClock
) -> None:
    conversation, turn_id, _ = await started_turn(store, user)

    await store.delete_conversation(user.id, conversation)

    assert turn_id not in {turn.id for turn in await store.stale_turns(clock.now + timedelta(days=1), limit=10_000)}


async def test_a_released_turn_is_stale_at_once(store: SqlStore, user: UserIdentity, clock: TickingClock) -> None:
    _, turn_id, _ = await started_turn(store, user)

    await store.release_turn(turn_id, "replica-b")  # not its turn: nothing changes
    assert turn_id not in {turn.id for turn in await store.stale_turns(clock.now - timedelta(seconds=30))}
    await store.release_turn(turn_id, "replica-a")

    assert turn_id in {turn.id for turn in await store.stale_turns(clock.now - timedelta(seconds=30), limit=10_000)}
