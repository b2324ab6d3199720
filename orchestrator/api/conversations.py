"""Conversations and their messages; posting a message runs a turn, streamed or as one JSON reply."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status

from orchestrator.api.schemas import (
    ConversationCreate,
    ConversationDetail,
    ConversationOut,
    ConversationRename,
    MessageCreate,
    MessageOut,
    ReplyOut,
    RunningTurnOut,
    ToolCallOut,
    ToolCallResultOut,
    error_responses,
)
from orchestrator.api.streaming import EventStreamResponse
from orchestrator.api.turn_events import events_response, turn_follower
from orchestrator.deps import CurrentCaller, State
from orchestrator.errors import (
    ConversationNotFound,
    InvalidInput,
    TurnInProgress,
)
from orchestrator.lifespan import AppState
from orchestrator.loop.events import MessageEnd, ToolCallFinished, ToolCallStarted, TurnError, TurnEvent
from orchestrator.loop.runner import StartedTurn
from orchestrator.mcp.contents import attachment_block
from orchestrator.memory.types import ConversationRecord, MessageRecord

router = APIRouter(prefix="/api/conversations", tags=["conversations"])
logger = logging.getLogger(__name__)

_errors = error_responses(401, 404, 409, 422, 503)


async def conversation_id(conversation_id: str) -> str:
    """Any id that is not one of ours is simply not found (never a database error)."""
    try:
        return str(uuid.UUID(conversation_id))
    except ValueError:
        raise ConversationNotFound(conversation_id[:100]) from None


ConversationId = Annotated[str, Depends(conversation_id)]


def _conversation_out(record: ConversationRecord) -> ConversationOut:
    return ConversationOut(id=record.id, title=record.title, created_at=record.created_at, updated_at=record.updated_at)


def _message_out(record: MessageRecord) -> MessageOut:
    return MessageOut(
        id=record.id,
        seq=record.seq,
        role=record.role,
        content=record.content,
        status=record.status,
        created_at=record.created_at,
        tool_calls=[ToolCallOut(id=call.id, name=call.name, arguments=call.arguments) for call in record.tool_calls],
        tool_call_id=record.tool_call_id,
        tool_name=record.tool_name,
        is_error=record.is_error,
        model=record.model,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        started_at=record.started_at,
        duration_ms=record.duration_ms,
        error=record.error,
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=_errors)
async def create_conversation(
    state: State, caller: CurrentCaller, body: ConversationCreate | None = None
) -> ConversationOut:
    record = await state.store.create_conversation(caller.user.id, body.title if body else None)
    return _conversation_out(record)


@router.get("", responses=_errors)
async def list_conversations(
    state: State,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    q: Annotated[str | None, Query(max_length=200, description="only titles containing this text (any case)")] = None,
) -> list[ConversationOut]:
    records = await state.store.list_conversations(caller.user.id, limit=limit, offset=offset, title_contains=q)
    return [_conversation_out(record) for record in records]


@router.get("/{conversation_id}", responses=_errors)
async def get_conversation(state: State, caller: CurrentCaller, conversation_id: ConversationId) -> ConversationDetail:
    record = await state.store.get_conversation(caller.user.id, conversation_id)
    messages = await state.store.list_messages(caller.user.id, conversation_id)
    turn = await state.store.latest_turn(caller.user.id, conversation_id)
    running = (
        RunningTurnOut(id=turn.id, user_message_id=turn.user_message_id, started_at=turn.created_at)
        if turn is not None and turn.status == "running"
        else None
    )
    return ConversationDetail(
        **_conversation_out(record).model_dump(),
        messages=[_message_out(message) for message in messages],
        running_turn=running,
    )


@router.patch("/{conversation_id}", responses=_errors)
async def rename_conversation(
    state: State, caller: CurrentCaller, conversation_id: ConversationId, body: ConversationRename
) -> ConversationOut:
    return _conversation_out(await state.store.rename_conversation(caller.user.id, conversation_id, body.title))


@router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors)
async def delete_conversation(state: State, caller: CurrentCaller, conversation_id: ConversationId) -> None:
    await state.store.get_conversation(caller.user.id, conversation_id)
    if state.turns.running(caller.user.id, conversation_id) or await state.supervisor.runs_elsewhere(
        caller.user.id, conversation_id
    ):
        raise TurnInProgress(conversation_id)
    if state.memories is not None:  # first: if that fails, the conversation is still there to delete again
        await state.memories.forget_conversation(caller.user.id, conversation_id)
    await state.store.delete_conversation(caller.user.id, conversation_id)


@router.post("/{conversation_id}/stop", status_code=status.HTTP_202_ACCEPTED, responses=_errors)
async def stop_turn(state: State, caller: CurrentCaller, conversation_id: ConversationId) -> dict[str, bool]:
    """Stop the running reply: the model stream and in-flight tool calls are cancelled, on whichever replica."""
    await state.store.get_conversation(caller.user.id, conversation_id)
    return {"stopped": await state.stops.stop(caller.user.id, conversation_id)}


@router.get(
    "/{conversation_id}/events",
    responses={
        **_errors,
        200: {
            "description": "The events of the conversation's current reply, after the one named by Last-Event-ID "
            "(or ?after=), then live until the reply ends (the same events as posting a message).",
            "content": {"text/event-stream": {}},
        },
        204: {"description": "No reply is running, and nothing of the last one was missed."},
    },
)
async def follow_events(
    state: State,
    caller: CurrentCaller,
    conversation_id: ConversationId,
    last_event_id: Annotated[str | None, Header(max_length=200)] = None,
    after: Annotated[str | None, Query(max_length=200, description="the last event id seen (as Last-Event-ID)")] = None,
) -> Response:
    """Follow the running reply, or catch up on it after a lost connection."""
    return await events_response(state, caller.user.id, conversation_id, after or last_event_id)


@router.post(
    "/{conversation_id}/messages",
    responses={
        **_errors,
        200: {
            "description": "The finished reply (Accept: application/json), or a stream of server-sent events "
            "(Accept: text/event-stream): message_start, token, tool_call_started, tool_call_progress, "
            "tool_call_finished, message_end, error.",
            "content": {"text/event-stream": {}},
        },
    },
)
async def post_message(
    state: State,
    caller: CurrentCaller,
    conversation_id: ConversationId,
    body: MessageCreate,
    accept: Annotated[str, Header()] = "application/json",
) -> Response:
    """Add the user's message and run the assistant's reply."""
    if len(body.content) > state.settings.max_message_chars:
        raise InvalidInput(f"the message is longer than {state.settings.max_message_chars} characters")
    content = await _with_attachments(state, body, caller.user.id)
    # The user's message is stored before the reply starts, so errors (unknown conversation, no model, a reply
    # already running) are plain HTTP errors, not stream events. The reply then runs apart from this request: a
    # client that goes away leaves it running, and can follow it again (GET .../events).
    if "text/event-stream" in accept:
        running = await state.supervisor.begin(caller.user, conversation_id, content)
        return EventStreamResponse(turn_follower(state, caller.user.id, conversation_id, running.id, None))
    reply = _ReplyCollector()
    running = await state.supervisor.begin(caller.user, conversation_id, content, observe=reply.collect)
    await running.done.wait()
    return Response(reply.reply(running.started).model_dump_json(), media_type="application/json")


class _ReplyCollector:
    """Builds the JSON reply from a turn's events."""

    def __init__(self) -> None:
        self.calls: dict[str, ToolCallResultOut] = {}
        self.errors: list[TurnError] = []
        self.end: MessageEnd | None = None

    async def collect(self, event: TurnEvent) -> None:
        if isinstance(event, ToolCallStarted):
            self.calls[event.id] = ToolCallResultOut(id=event.id, name=event.name, arguments=event.arguments)
        elif isinstance(event, ToolCallFinished) and event.id in self.calls:
            self.calls[event.id] = self.calls[event.id].model_copy(
                update={"is_error": event.is_error, "result": event.result, "duration_ms": event.duration_ms}
            )
        elif isinstance(event, TurnError):
            self.errors.append(event)
        elif isinstance(event, MessageEnd):
            self.end = event

    def reply(self, started: StartedTurn) -> ReplyOut:
        end = started.end or self.end or _STOPPED
        if self.errors and started.end is None and self.end is None:
            end = MessageEnd(None, "error", "", 0, 0, 0, reason=self.errors[-1].message)
        return ReplyOut(
            conversation_id=started.conversation_id,
            message_id=end.message_id,
            status=end.status,
            content=end.content,
            reason=end.reason,
            tool_calls=list(self.calls.values()),
            prompt_tokens=end.prompt_tokens,
            completion_tokens=end.completion_tokens,
            tool_iterations=end.tool_iterations,
            error_code=self.errors[-1].code if self.errors else None,
        )


_STOPPED = MessageEnd(None, "incomplete", "", 0, 0, 0, reason="stopped before the reply finished")


async def _with_attachments(state: AppState, body: MessageCreate, user_id: str) -> str:
    """The message with each attached resource read now and appended, so the stored message says what was sent.

    Raises:
        NotFound, ToolError: a resource could not be read (before anything is stored).
    """
    if not body.attachments:
        return body.content
    limit = state.settings.tool_result_max_chars
    blocks = [body.content]
    for attachment in body.attachments:
        result = await state.registry.read_resource(attachment.server_id, attachment.uri, user_id)
        blocks.append(attachment_block(attachment.server_id, attachment.uri, result, max_chars=limit))
    return "\n\n".join(blocks)
