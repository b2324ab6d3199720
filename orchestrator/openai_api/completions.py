"""``GET /v1/models`` and ``POST /v1/chat/completions``: the assistant behind OpenAI's Chat Completions API.

Any OpenAI client can talk to the assistant: its replies come from the same tool-calling loop as the chat UI's,
with the user's MCP tools run on the server. The client sends the whole conversation with every request (as with
OpenAI); the turn runs on an in-memory copy of it (``ephemeral``), so nothing is added to the user's stored
conversations. Tokens are counted and daily quotas apply as for any other turn.

Model ids: ``assistant``, and the configured ``OPENAI_MODEL``; both are the assistant with its tools.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from anyio.streams.memory import MemoryObjectSendStream
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from orchestrator.approvals.service import UnattendedGate
from orchestrator.auth import Caller
from orchestrator.deps import CurrentCaller, State
from orchestrator.errors import ModelNotConfigured, ModelNotFound, OrchestratorError, TokenQuotaExceeded
from orchestrator.lifespan import AppState
from orchestrator.loop.events import (
    MessageEnd,
    Token,
    ToolCallFinished,
    ToolCallProgress,
    ToolCallStarted,
    TurnError,
    TurnEvent,
)
from orchestrator.loop.runner import StartedTurn, TurnRunner
from orchestrator.openai_api.errors import error_body
from orchestrator.openai_api.schemas import ChatCompletionRequest, check_supported
from orchestrator.openai_api.streaming import DONE, Chunk, ChunkStreamResponse, Comment, until_disconnect
from orchestrator.openai_api.turns import prepare_turn

router = APIRouter(prefix="/v1", tags=["openai-compatible"])
logger = logging.getLogger(__name__)

ASSISTANT_MODEL = "assistant"
OWNED_BY = "mcp-assistant"
STEP_SEPARATOR = "\n\n"
"""Between the text of a step that called tools and the text after it, so the steps do not run together."""


def model_ids(state: AppState) -> list[str]:
    return list(dict.fromkeys([ASSISTANT_MODEL, state.settings.openai_model]))


def _model(model_id: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": OWNED_BY}


@router.get("/models")
async def list_models(state: State, _caller: CurrentCaller) -> dict[str, Any]:
    """The models a client may ask for (OpenAI's list format)."""
    created = int(time.time() - (time.monotonic() - state.started_at))
    return {"object": "list", "data": [_model(model_id, created) for model_id in model_ids(state)]}


@router.get("/models/{model_id:path}")
async def get_model(state: State, _caller: CurrentCaller, model_id: str) -> dict[str, Any]:
    if model_id not in model_ids(state):
        raise ModelNotFound(model_id[:256])
    return _model(model_id, int(time.time() - (time.monotonic() - state.started_at)))


@router.post("/chat/completions")
async def create_chat_completion(
    state: State, caller: CurrentCaller, body: ChatCompletionRequest, request: Request
) -> Response:
    """Run one turn of the assistant on the given messages; a ``chat.completion``, or ``chat.completion.chunk``
    server-sent events ending with ``data: [DONE]`` when ``stream`` is true."""
    check_supported(body)
    if body.model not in model_ids(state):
        raise ModelNotFound(body.model[:256])
    if not state.model.configured:
        raise ModelNotConfigured()
    if await state.meter.remaining_today(caller.user.id) == 0:
        raise TokenQuotaExceeded(state.meter.quota(caller.user.id))
    completion = _Completion(f"chatcmpl-{uuid.uuid4().hex}", body.model, int(time.time()))
    prepared = prepare_turn(
        state.runner,
        body,
        user_id=caller.user.id,
        conversation_id=str(uuid.uuid4()),
        max_message_chars=state.settings.max_message_chars,
        gate=UnattendedGate(state.approvals) if state.approvals is not None else None,
    )
    started = await prepared.runner.start(caller.user, prepared.conversation_id, prepared.content)
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return ChunkStreamResponse(lambda chunks: _stream(prepared.runner, started, completion, chunks, include_usage))
    ended = await until_disconnect(request, lambda: _run(prepared.runner, started, completion))
    if ended is None:  # the client went away; nobody reads this
        return Response(status_code=499)
    return _json(ended, completion, caller)


@dataclass
class _Completion:
    """One request's completion as it is being made: its text (steps joined) and the last error reported."""

    id: str
    model: str
    created: int
    parts: list[str] = field(default_factory=list[str])
    error: TurnError | None = None
    after_tools: bool = False

    def text_of(self, event: TurnEvent) -> str | None:
        """The text ``event`` adds to the reply, if any (a step after tool calls starts on a new paragraph)."""
        if isinstance(event, ToolCallStarted):
            self.after_tools = bool(self.parts)
        elif isinstance(event, TurnError):
            self.error = event
        elif isinstance(event, Token) and event.text:
            text = (STEP_SEPARATOR + event.text) if self.after_tools else event.text
            self.after_tools = False
            self.parts.append(text)
            return text
        return None

    def failure(self, end: MessageEnd) -> str:
        """Why a turn that ended in error failed: the error it reported, else the end's reason."""
        return self.error.message if self.error else (end.reason or "the model failed")

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }


def _usage(end: MessageEnd) -> dict[str, int]:
    return {
        "prompt_tokens": end.prompt_tokens,
        "completion_tokens": end.completion_tokens,
        "total_tokens": end.prompt_tokens + end.completion_tokens,
    }


def _finish_reason(end: MessageEnd) -> str:
    return "stop" if end.status == "complete" else "length"


async def _run(runner: TurnRunner, started: StartedTurn, completion: _Completion) -> MessageEnd:
    async def collect(event: TurnEvent) -> None:
        completion.text_of(event)

    return await runner.run(started, collect)


def _json(end: MessageEnd, completion: _Completion, caller: Caller) -> Response:
    if end.status == "error":
        message = completion.failure(end)
        logger.info("completion failed", extra={"user_id": caller.user.id, "completion_id": completion.id})
        return JSONResponse(error_body(message, type="server_error", code="model_error"), status_code=502)
    body = {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(completion.parts), "refusal": None},
                "logprobs": None,
                "finish_reason": _finish_reason(end),
            }
        ],
        "usage": _usage(end),
    }
    return JSONResponse(body)


def _comment(event: TurnEvent) -> Comment | None:
    """What the tools are doing, as comments (OpenAI's stream format has no place for tools run by the server)."""
    if isinstance(event, ToolCallStarted):
        return Comment(f"tool_call_started {event.id} {event.name}")
    if isinstance(event, ToolCallProgress):
        return Comment(f"tool_call_progress {event.id} {event.progress:g}")
    if isinstance(event, ToolCallFinished):
        return Comment(f"tool_call_finished {event.id} {'error' if event.is_error else 'ok'}")
    return None


async def _stream(
    runner: TurnRunner,
    started: StartedTurn,
    completion: _Completion,
    chunks: MemoryObjectSendStream[Chunk],
    include_usage: bool,
) -> None:
    await chunks.send(completion.chunk({"role": "assistant", "content": ""}))

    async def emit(event: TurnEvent) -> None:
        text = completion.text_of(event)
        if text is not None:
            await chunks.send(completion.chunk({"content": text}))
        elif (comment := _comment(event)) is not None:
            await chunks.send(comment)

    try:
        end = await runner.run(started, emit)
    except OrchestratorError as exc:
        await chunks.send(error_body(str(exc), type="server_error", code="model_error"))
        return
    except Exception:  # the stream's top level: report and log, never a silent broken stream
        logger.exception("completion failed", extra={"completion_id": completion.id})
        await chunks.send(error_body("the reply failed because of an internal error", type="server_error"))
        return
    if end.status == "error":
        message = completion.failure(end)
        await chunks.send(error_body(message, type="server_error", code="model_error"))
        return
    await chunks.send(completion.chunk({}, _finish_reason(end)))
    if include_usage:
        await chunks.send({**completion.chunk({}), "choices": [], "usage": _usage(end)})
    await chunks.send(DONE)
