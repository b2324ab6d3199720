"""Following a conversation's turn as server-sent events: from its start, or after the last event a client saw.

Each event's ``id:`` is its id in the turn's ``EventLog`` (``<turn id>.<attempt>.<seq>``). A client that lost its
stream sends the last id back (``Last-Event-ID``, or ``?after=``) and gets exactly the events after it, then the
live ones until the reply ends, from any replica that shares the log.
"""

from __future__ import annotations

import logging

from anyio.streams.memory import MemoryObjectSendStream
from fastapi import Response, status

from orchestrator.api.streaming import EventStreamResponse, Producer, SentEvent
from orchestrator.errors import EventLogUnavailable
from orchestrator.lifespan import AppState
from orchestrator.loop.event_log import EventId, EventPosition, follow

logger = logging.getLogger(__name__)


def turn_follower(
    state: AppState, user_id: str, conversation_id: str, turn_id: str, after: EventPosition | None
) -> Producer:
    """A producer for ``EventStreamResponse`` that sends the turn's events after ``after`` until the turn ends."""

    async def still_running() -> bool:
        latest = await state.store.latest_turn(user_id, conversation_id)
        return latest is not None and latest.id == turn_id and latest.status == "running"

    async def produce(send: MemoryObjectSendStream[SentEvent]) -> None:
        try:
            async for entry in follow(state.events, turn_id, after, still_running=still_running):
                if entry.event is not None:
                    await send.send((str(entry.id), entry.event))
        except EventLogUnavailable as exc:  # the stream ends; the client reconnects after its last event
            logger.warning("a reply's events could not be read: %s", exc.reason, extra={"turn_id": turn_id})

    return produce


async def events_response(state: AppState, user_id: str, conversation_id: str, last_event_id: str | None) -> Response:
    """The events of the conversation's latest turn after ``last_event_id`` (all of them without one).

    A running turn is followed until it ends. A turn that has ended sends what the client missed of it, when the
    log still has it; otherwise (nothing missed, nothing running, or the events expired) the answer is 204 and the
    stored conversation is the whole story.

    Raises:
        ConversationNotFound: the conversation does not exist or is not the user's.
        InvalidInput: ``last_event_id`` is not one of ours.
    """
    await state.store.get_conversation(user_id, conversation_id)
    since = EventId.parse(last_event_id) if last_event_id else None
    turn = await state.store.latest_turn(user_id, conversation_id)
    if turn is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    after = since.position if since is not None and since.turn_id == turn.id else None
    if turn.status != "running":
        if after is None:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        missed = await state.events.read(turn.id, after, wait_seconds=0)
        if not missed or missed[0].event is None:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
    return EventStreamResponse(turn_follower(state, user_id, conversation_id, turn.id, after))
