"""The tool-calling loop: one user message in, one finished (or clearly unfinished) reply out.

Every step is stored as it happens, so a crash, a Stop or a failing model never loses the user's message or leaves
a conversation the model cannot continue (see ``orchestrator.loop.history``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard, TypeVar

import anyio

from orchestrator.errors import (
    ModelError,
    ModelNotConfigured,
    ModelStreamInterrupted,
    ToolArgumentsInvalid,
    ToolError,
)
from orchestrator.llm.types import ChatModel, ModelToolCall, StepCompleted, TextDelta, Usage
from orchestrator.loop.events import (
    MessageEnd,
    MessageStart,
    Token,
    ToolCallFinished,
    ToolCallProgress,
    ToolCallStarted,
    TurnError,
    TurnEvent,
    TurnStatus,
)
from orchestrator.loop.gate import GatedCall, ToolGate
from orchestrator.loop.history import build_history, tool_call_message
from orchestrator.loop.interactions import PendingInteractions
from orchestrator.loop.resume import safe_to_repeat
from orchestrator.loop.server_requests import TurnServerRequests
from orchestrator.loop.usage import TokenMeter
from orchestrator.mcp.types import ToolOutput, ToolSource, ToolSpec
from orchestrator.memory.recall import MemoryRecall
from orchestrator.memory.types import (
    ConversationStore,
    MessageRecord,
    NewMessage,
    NewTurn,
    ToolCallRecord,
    UserIdentity,
)
from orchestrator.telemetry.metrics import TOKEN_QUOTA_EXCEEDED
from orchestrator.telemetry.tracing import turn_span
from orchestrator.tools.catalogue import ToolIndex
from orchestrator.tools.selection import SelectionPolicy, ToolSelector, TurnTools

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

Emit = Callable[[TurnEvent], Awaitable[None]]

TITLE_MAX_CHARS = 80
_ALL_TOOLS = ToolSelector(ToolIndex(None), SelectionPolicy(enabled=False))
"""Every tool on every step: the selector of a runner given none."""
# Writes during a Stop run shielded from cancellation, but never wait on a stuck database for longer than this.
PERSIST_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class LoopLimits:
    max_tool_iterations: int = 10
    turn_token_budget: int = 200_000
    history_max_chars: int = 200_000
    max_tokens: int | None = None
    system_prompt: str | None = None
    interaction_timeout_seconds: float = 300.0


class TurnRunner:
    """Runs turns of a conversation against a model and a source of tools."""

    def __init__(
        self,
        model: ChatModel,
        tools: ToolSource,
        store: ConversationStore,
        limits: LoopLimits,
        interactions: PendingInteractions | None = None,
        *,
        meter: TokenMeter | None = None,
        selector: ToolSelector | None = None,
        memory: MemoryRecall | None = None,
        gate: ToolGate | None = None,
    ) -> None:
        """Args:
        selector: picks each step's tools (default: every tool, every step).
        memory: recalls the user's memories for each turn and remembers their messages (default: none).
        gate: decides whether each MCP tool call may run, asking the user if need be (default: every call runs).
        """
        self._model = model
        self._tools = tools
        self._store = store
        self._limits = limits
        self.interactions = interactions or PendingInteractions()
        self._meter = meter
        self._selector = selector or _ALL_TOOLS
        self._memory = memory
        self._gate = gate

    @property
    def limits(self) -> LoopLimits:
        return self._limits

    def on_store(self, store: ConversationStore, limits: LoopLimits, gate: ToolGate | None = None) -> TurnRunner:
        """This runner's model, tools, tool selection and token meter over another store, limits and tool gate,
        without memory recall: for turns whose messages are not a stored conversation (the OpenAI-compatible API's)."""
        return TurnRunner(
            self._model,
            self._tools,
            store,
            limits,
            self.interactions,
            meter=self._meter,
            selector=self._selector,
            gate=gate,
        )

    @property
    def model_configured(self) -> bool:
        return self._model.configured

    @property
    def model_name(self) -> str:
        return self._model.model_name

    async def start(
        self, user: UserIdentity, conversation_id: str, content: str, *, turn: NewTurn | None = None
    ) -> StartedTurn:
        """Store ``content`` as the user's message (and ``turn``, in the same transaction); ``run`` replies.

        The first message of a conversation that still has the default title also names it.

        Raises:
            ModelNotConfigured: before anything is stored, when there is no model to talk to.
            ConversationNotFound: the conversation does not exist or belongs to another user.
        """
        if not self._model.configured:
            raise ModelNotConfigured()
        title = " ".join(content.split())[:TITLE_MAX_CHARS] or None
        history, user_message = await _shielded(
            self._store.start_turn(
                user.id, conversation_id, NewMessage(role="user", content=content), title=title, turn=turn
            )
        )
        return StartedTurn(user, conversation_id, history, user_message)

    async def run(self, started: StartedTurn, emit: Emit) -> MessageEnd:
        """Run the loop to a reply for a started turn, emitting events as it goes, and return how it ended."""
        turn_tools = self._selector.for_turn(started.history, started.user_message)
        turn = _Turn(self._model, self._tools, self._store, self._limits, started, emit, self.interactions, self._meter)
        turn.gate = self._gate
        with turn_span(started.conversation_id):
            return await turn.run(turn_tools, self._memory)

    async def resume(
        self, started: StartedTurn, steps: Sequence[MessageRecord], rerun: Sequence[ModelToolCall], emit: Emit
    ) -> MessageEnd:
        """Continue a turn whose run was interrupted, from its stored ``steps`` (the messages after the user's).

        ``rerun`` are the unanswered tool calls of the last step that may safely run again; they run as any call
        does, then the loop goes on with the model. Every other call of ``steps`` must have its result stored.
        Nothing is emitted for the stored steps: the caller tells clients about them.
        """
        turn_tools = self._selector.for_turn(started.history, started.user_message)
        turn = _Turn(self._model, self._tools, self._store, self._limits, started, emit, self.interactions, self._meter)
        with turn_span(started.conversation_id):
            return await turn.resume(turn_tools, steps, rerun)


@dataclass(slots=True)
class StartedTurn:
    user: UserIdentity
    conversation_id: str
    history: Sequence[MessageRecord]
    user_message: MessageRecord
    end: MessageEnd | None = None
    """How the turn ended, once its reply is stored (also when a Stop ended it)."""
    handed_over: bool = False
    """Cancelled to be resumed elsewhere (the service is shutting down): no reply is stored for it here."""
    taken_over: bool = False
    """Another replica took the turn over (this one stalled); it owns the turn's steps: nothing more is stored here."""


class _Turn:
    """The state of one running turn."""

    def __init__(
        self,
        model: ChatModel,
        tools: ToolSource,
        store: ConversationStore,
        limits: LoopLimits,
        started: StartedTurn,
        emit: Emit,
        interactions: PendingInteractions,
        meter: TokenMeter | None = None,
    ) -> None:
        self.model = model
        self.meter = meter
        self.quota_left: int | None = None  # tokens the user may still spend, as of the turn's start
        self.unrecorded = Usage()
        self.interactions = interactions
        self.tools = tools
        self.store = store
        self.limits = limits
        self.started = started
        self.user = started.user
        self.conversation_id = started.conversation_id
        self.emit = emit
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.iterations = 0
        self.step_text: list[str] = []
        self.began = time.monotonic()
        self.turn_tools: TurnTools = _ALL_TOOLS.for_turn((), started.user_message)
        self.specs: Sequence[ToolSpec] = ()
        self.gate: ToolGate | None = None

    async def run(self, turn_tools: TurnTools, memory: MemoryRecall | None) -> MessageEnd:
        history, user_message = self.started.history, self.started.user_message
        messages: list[dict[str, Any]] = []
        if self.limits.system_prompt:
            messages.append({"role": "system", "content": self.limits.system_prompt})
        messages.extend(build_history([*history, user_message], max_chars=self.limits.history_max_chars))
        await self.emit(MessageStart(self.conversation_id, user_message.id, self.model.model_name))
        self.turn_tools = turn_tools

        async def begin() -> MessageEnd:
            if self.meter is not None:
                self.quota_left = await self.meter.remaining_today(self.user.id)
            if memory is not None:
                note = await memory.prepare(self.user.id, self.conversation_id, user_message.content)
                if note is not None:  # just before the new message: the earlier ones stay a cacheable prefix
                    messages.insert(len(messages) - 1, {"role": "system", "content": note})
            return await self._loop(messages)

        return await self._guarded(begin)

    async def resume(
        self, turn_tools: TurnTools, steps: Sequence[MessageRecord], rerun: Sequence[ModelToolCall]
    ) -> MessageEnd:
        self.turn_tools = turn_tools
        self.iterations = sum(1 for step in steps if step.tool_calls)

        async def go_on() -> MessageEnd:
            results: dict[str, ToolOutput] = {}
            if rerun:
                self.specs = await self.tools.tools_for(self.user.id)
                await self._run_tool_calls(rerun, results, {spec.name: spec for spec in self.specs})
            messages: list[dict[str, Any]] = []
            if self.limits.system_prompt:
                messages.append({"role": "system", "content": self.limits.system_prompt})
            records = [*self.started.history, self.started.user_message, *steps]
            for message in build_history(records, max_chars=self.limits.history_max_chars):
                if message["role"] == "tool" and message["tool_call_id"] in results:
                    message["content"] = results[message["tool_call_id"]].text
                messages.append(message)
            return await self._loop(messages)

        return await self._guarded(go_on)

    async def _guarded(self, body: Callable[[], Awaitable[MessageEnd]]) -> MessageEnd:
        """Run the turn's body; a failing model or a Stop still ends it with a stored reply."""
        try:
            return await body()
        except ModelStreamInterrupted as exc:
            return await self._finish("".join(self.step_text), "incomplete", reason=exc.reason, code="stream_cut")
        except ModelError as exc:
            logger.warning("turn failed: %s", exc, extra={"conversation_id": self.conversation_id})
            return await self._finish("".join(self.step_text), "error", reason=str(exc), code="model_error")
        except anyio.get_cancelled_exc_class():
            # A Stop after the reply was stored changes nothing; a turn handed over is finished by another run.
            if self.started.end is None and not self.started.handed_over:
                reason = "stopped before the reply finished"
                record: MessageRecord | None = None
                with anyio.CancelScope(shield=True):
                    await self._record_usage()
                    record = await self._store_reply("".join(self.step_text), "incomplete", reason)
                self.started.end = self._end(record, "".join(self.step_text), "incomplete", reason)
            raise

    async def _loop(self, messages: list[dict[str, Any]]) -> MessageEnd:
        while True:
            if self.quota_left is not None and self.prompt_tokens + self.completion_tokens >= self.quota_left:
                TOKEN_QUOTA_EXCEEDED.inc()
                quota = self.meter.quota(self.user.id) if self.meter is not None else None
                return await self._finish(
                    "",
                    "incomplete",
                    reason=f"you have used your daily token quota ({quota} tokens); it renews at 00:00 UTC",
                    code="token_quota_exceeded",
                )
            specs = self.specs = await self.tools.tools_for(self.user.id)
            offered = await self.turn_tools.offer(specs)
            step = await self._model_step(messages, offered.definitions)
            if not step.tool_calls:
                status: TurnStatus = "incomplete" if step.finish_reason == "length" else "complete"
                reason = "the reply reached the maximum length" if status == "incomplete" else None
                return await self._finish(step.content, status, reason=reason)
            if self.iterations >= self.limits.max_tool_iterations:
                return await self._finish(
                    step.content,
                    "incomplete",
                    reason=f"stopped after {self.iterations} tool steps (the limit for one reply); ask to continue",
                    code="max_tool_iterations",
                )
            if self.prompt_tokens + self.completion_tokens >= self.limits.turn_token_budget:
                return await self._finish(
                    step.content,
                    "incomplete",
                    reason=f"stopped after using {self.prompt_tokens + self.completion_tokens} tokens "
                    f"(the budget for one reply is {self.limits.turn_token_budget}); ask to continue",
                    code="token_budget",
                )
            self.iterations += 1
            # Only the specs of the tools asked for: the event names their servers.
            asked = {call.name for call in step.tool_calls}
            await self._run_tool_step(messages, step, {spec.name: spec for spec in specs if spec.name in asked})

    async def _model_step(self, messages: list[dict[str, Any]], tools: Sequence[Mapping[str, Any]]) -> StepCompleted:
        self.step_text = []
        completed: StepCompleted | None = None
        async with aclosing(self.model.stream(messages, tools, max_tokens=self.limits.max_tokens)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    self.step_text.append(event.text)
                    await self.emit(Token(event.text))
                else:
                    completed = event
        if completed is None:
            raise ModelStreamInterrupted("the model ended its reply without finishing it")
        self.count_usage(completed.usage)
        await self._record_usage()
        return completed

    def count_usage(self, usage: Usage) -> None:
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.unrecorded = Usage(
            self.unrecorded.prompt_tokens + usage.prompt_tokens,
            self.unrecorded.completion_tokens + usage.completion_tokens,
        )

    async def _record_usage(self) -> None:
        """Add the tokens counted since the last call to the user's accounts (model steps and sampling alike)."""
        usage, self.unrecorded = self.unrecorded, Usage()
        if self.meter is None or usage.total_tokens == 0:
            return
        await _shielded(
            self.meter.record(
                self.user.id, self.conversation_id, self.model.model_name, usage.prompt_tokens, usage.completion_tokens
            )
        )

    async def _run_tool_step(
        self, messages: list[dict[str, Any]], step: StepCompleted, by_name: Mapping[str, ToolSpec]
    ) -> None:
        calls = [ToolCallRecord(call.id, call.name, call.arguments) for call in step.tool_calls]
        await _persist(
            self.store,
            self.user.id,
            self.conversation_id,
            [
                NewMessage(
                    role="assistant",
                    content=step.content,
                    tool_calls=calls,
                    model=self.model.model_name,
                    prompt_tokens=step.usage.prompt_tokens,
                    completion_tokens=step.usage.completion_tokens,
                )
            ],
            durable=False,  # intermediate step: the turn's final reply makes it durable
        )
        self.step_text = []
        messages.append(
            {
                "role": "assistant",
                "content": step.content or None,
                "tool_calls": [tool_call_message(call.id, call.name, call.arguments) for call in step.tool_calls],
            }
        )
        for call in step.tool_calls:
            spec = by_name.get(call.name)
            await self.emit(
                ToolCallStarted(
                    call.id,
                    call.name,
                    spec.server_id if spec else None,
                    spec.tool if spec else None,
                    call.arguments,
                )
            )
        results: dict[str, ToolOutput] = {}
        await self._run_tool_calls(step.tool_calls, results, by_name)
        # Results go back in the order the model asked for them; each id exactly once.
        messages.extend(
            {"role": "tool", "tool_call_id": call.id, "content": results[call.id].text} for call in step.tool_calls
        )

    async def _run_tool_calls(
        self, calls: Sequence[ModelToolCall], results: dict[str, ToolOutput], by_name: Mapping[str, ToolSpec]
    ) -> None:
        """Only read-only or idempotent tools run side by side; others one after the other, in the model's order."""
        if len(calls) == 1 or not all(
            self.turn_tools.handles(call.name) or self._may_overlap(by_name.get(call.name)) for call in calls
        ):
            for call in calls:
                await self._run_tool_call(call, results)
            return
        async with anyio.create_task_group() as group:
            for call in calls:
                group.start_soon(self._run_tool_call, call, results)

    async def _run_tool_call(self, call: ModelToolCall, results: dict[str, ToolOutput]) -> None:
        started = time.monotonic()
        started_at = datetime.now(UTC)

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            elapsed = int((time.monotonic() - started) * 1000)
            await self.emit(ToolCallProgress(call.id, progress, total, message, elapsed))

        requests = TurnServerRequests(self, call.id, self.interactions, self.limits.interaction_timeout_seconds)
        admitted = False
        try:
            refusal = None if self.turn_tools.handles(call.name) else await self._admit(call)
            admitted = True
            # The call's time is its run's, not the time it waited for the user's approval.
            started, started_at = time.monotonic(), datetime.now(UTC)
            if refusal is not None:
                output = ToolOutput(text=refusal, is_error=True)
            elif self.turn_tools.handles(call.name):
                output = await self.turn_tools.call(call.name, _parse_arguments(call), self.specs)
            else:
                output = await self.tools.call_tool(
                    call.name, _parse_arguments(call), user_id=self.user.id, on_progress=on_progress, requests=requests
                )
        except ToolError as exc:
            output = ToolOutput(text=f"Error: {exc}", is_error=True)
        except anyio.get_cancelled_exc_class():
            if (admitted or not self.started.handed_over) and not self.started.taken_over:
                # A call handed over while it waited for the user's approval never ran: the resumed turn asks again.
                with anyio.CancelScope(shield=True):
                    await self._store_tool_result(
                        call, ToolOutput(text="The tool call was cancelled.", is_error=True), started_at, started
                    )
            raise
        results[call.id] = output
        duration_ms = await self._store_tool_result(call, output, started_at, started)
        await self.emit(
            ToolCallFinished(call.id, call.name, output.is_error, output.text, output.truncated, duration_ms)
        )

    @staticmethod
    def _may_overlap(spec: ToolSpec | None) -> bool:
        return spec is None or safe_to_repeat(spec)

    async def _admit(self, call: ModelToolCall) -> str | None:
        if self.gate is None:
            return None
        spec = next((spec for spec in self.specs if spec.name == call.name), None)
        gated = GatedCall(self.user.id, self.conversation_id, call.id, call.name, call.arguments, spec)
        return await self.gate.admit(gated, self.emit)

    async def _store_tool_result(
        self, call: ModelToolCall, output: ToolOutput, started_at: datetime, started: float
    ) -> int:
        duration_ms = int((time.monotonic() - started) * 1000)
        await _persist(
            self.store,
            self.user.id,
            self.conversation_id,
            [
                NewMessage(
                    role="tool",
                    content=output.text,
                    tool_call_id=call.id,
                    tool_name=call.name,
                    is_error=output.is_error,
                    started_at=started_at,
                    duration_ms=duration_ms,
                )
            ],
            durable=False,  # intermediate step: the turn's final reply makes it durable
        )
        return duration_ms

    async def _store_reply(self, content: str, status: TurnStatus, error: str | None) -> MessageRecord | None:
        if status != "complete" and not content and error is None:
            return None
        [record] = await _persist(
            self.store,
            self.user.id,
            self.conversation_id,
            [
                NewMessage(
                    role="assistant",
                    content=content,
                    status=status,
                    model=self.model.model_name,
                    prompt_tokens=self.prompt_tokens,
                    completion_tokens=self.completion_tokens,
                    error=error,
                )
            ],
        )
        return record

    def _end(self, record: MessageRecord | None, content: str, status: TurnStatus, reason: str | None) -> MessageEnd:
        return MessageEnd(
            message_id=record.id if record else None,
            status=status,
            content=content,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            tool_iterations=self.iterations,
            reason=reason,
        )

    async def _finish(
        self, content: str, status: TurnStatus, *, reason: str | None, code: str | None = None
    ) -> MessageEnd:
        await self._record_usage()
        record = await self._store_reply(content, status, reason)
        end = self.started.end = self._end(record, content, status, reason)
        if code is not None and reason is not None:
            await self.emit(TurnError(code, reason))
        logger.info(
            "turn finished: %s",
            status,
            extra={
                "conversation_id": self.conversation_id,
                "status": status,
                "code": code,
                "tool_iterations": self.iterations,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "duration_ms": int((time.monotonic() - self.began) * 1000),
            },
        )
        await self.emit(end)
        return end


def _parse_arguments(call: ModelToolCall) -> dict[str, Any]:
    text = call.arguments.strip() or "{}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolArgumentsInvalid(
            call.name, f"arguments are not valid JSON ({exc.msg} at position {exc.pos})"
        ) from None
    if not _is_json_object(value):
        raise ToolArgumentsInvalid(call.name, "arguments must be a JSON object")
    if "\\ud" in text.lower() and not _encodable(value):
        # An escaped lone surrogate parses, but no MCP transport can send it (it is not UTF-8).
        raise ToolArgumentsInvalid(call.name, "arguments contain invalid Unicode (a lone surrogate)")
    return value


def _encodable(value: dict[str, Any]) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_json_object(value: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict)


async def _persist(
    store: ConversationStore,
    user_id: str,
    conversation_id: str,
    messages: Sequence[NewMessage],
    *,
    durable: bool = True,
) -> list[MessageRecord]:
    return await _shielded(store.append_messages(user_id, conversation_id, messages, durable=durable))


async def _shielded(write: Awaitable[_T]) -> _T:
    """Finish a write even if a Stop arrives meanwhile, so a step is stored whole or not at all (bounded)."""
    with anyio.CancelScope(shield=True), anyio.fail_after(PERSIST_TIMEOUT_SECONDS):
        return await write
    raise AssertionError("unreachable: a shielded scope swallows nothing, and fail_after raises")
