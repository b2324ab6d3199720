"""Turns that run apart from the request that started them, and survive the replica that ran them.

``TurnSupervisor.begin`` stores the user's message and a ``running`` turn in one transaction, then runs the turn
in the service's task group: a client that goes away leaves it running, a Stop cancels it (``ActiveTurns``). Every
event goes to the ``EventLog``, where any number of clients follow it and catch up after a reconnect.

While a turn runs, its replica beats its heart in the database. A turn whose heart stopped (the replica died) is
claimed by one replica (``resume_stale`` runs at start-up and every few heartbeats) and resumed from its stored
messages: tool calls with a stored result are never run again; an unanswered call runs again only when its tool is
read-only or idempotent, otherwise it gets a stored result saying it was interrupted. After ``max_attempts`` runs,
or when resuming is off or impossible, the turn ends ``failed`` with a stored reply that says so.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.errors import OrchestratorError, TurnInProgress
from orchestrator.loop.active import ActiveTurns, TurnHandle
from orchestrator.loop.event_log import EventLog, EventPosition
from orchestrator.loop.events import MessageEnd, MessageStart, TurnError, TurnEvent
from orchestrator.loop.resume import (
    StoredTurn,
    as_model_call,
    interrupted_result,
    replayed_events,
    safe_to_repeat,
    split_turn,
)
from orchestrator.loop.runner import Emit, StartedTurn, TurnRunner
from orchestrator.mcp.types import ToolSource
from orchestrator.memory.turns import TurnRecord, TurnState, TurnStore
from orchestrator.memory.types import ConversationStore, NewMessage, NewTurn, UserIdentity

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

STALE_HEARTBEATS = 3
"""A turn whose replica missed this many heartbeats is taken over."""
WRITE_TIMEOUT_SECONDS = 10.0
FIRST_EVENT_TIMEOUT_SECONDS = 5.0
NOT_RESUMED = "the reply was interrupted when the assistant restarted and could not be finished; ask again"


class TurnsStore(ConversationStore, TurnStore, Protocol):
    """What the supervisor needs of the store: conversations and turns (``SqlStore`` is both)."""


@dataclass(frozen=True, slots=True)
class ResumePolicy:
    enabled: bool = True
    max_attempts: int = 2


@dataclass(eq=False)
class RunningTurn:
    """A turn this replica runs; ``done`` is set once it has ended (its reply stored, its events closed)."""

    id: str
    started: StartedTurn
    handle: TurnHandle
    logged: anyio.Event = field(default_factory=anyio.Event)
    """Its first event is in the log: a client following it from now on finds it."""
    done: anyio.Event = field(default_factory=anyio.Event)


class TurnSupervisor:
    """Starts turns in the background, keeps them alive in the database, and resumes those left behind.

    Args:
        owner: this replica's id, recorded on the turns it runs.
        heartbeat_seconds: how often a running turn is touched; after ``STALE_HEARTBEATS`` missed beats it is stale.
        ready: awaited before the first resume (the MCP servers' first connections), so resumed tool calls find
            their servers.
    """

    def __init__(
        self,
        runner: TurnRunner,
        store: TurnsStore,
        log: EventLog,
        active: ActiveTurns,
        tools: ToolSource,
        *,
        owner: str,
        heartbeat_seconds: float,
        policy: ResumePolicy,
        ready: Callable[[], Awaitable[object]] | None = None,
        waiting_calls: Callable[[str, str], Awaitable[Collection[str]]] | None = None,
    ) -> None:
        """Args:
        waiting_calls: the ids of a conversation's tool calls that wait for the user's approval (never sent to
            their server, so a resumed turn may go on with them whatever the tool).
        """
        self._waiting_calls = waiting_calls
        self._runner = runner
        self._store = store
        self._log = log
        self._active = active
        self._tools = tools
        self.owner = owner
        self._heartbeat = heartbeat_seconds
        self._policy = policy
        self._ready = ready
        self._group: TaskGroup | None = None
        self._running: dict[str, RunningTurn] = {}

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self._heartbeat * STALE_HEARTBEATS)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the task group the turns run in; resume stale turns now and every few heartbeats, until cancelled."""
        async with anyio.create_task_group() as group:
            self._group = group
            task_status.started()
            if self._ready is not None:
                await self._ready()
            while True:
                await self.resume_stale()
                await anyio.sleep(self._heartbeat * STALE_HEARTBEATS)

    async def runs_elsewhere(self, user_id: str, conversation_id: str) -> bool:
        """Whether the conversation's turn runs on a replica that is alive (this one included)."""
        latest = await self._store.latest_turn(user_id, conversation_id)
        return latest is not None and latest.status == "running" and not self._is_stale(latest)

    # --- new turns -------------------------------------------------------------------------------------------------

    async def begin(
        self, user: UserIdentity, conversation_id: str, content: str, *, observe: Emit | None = None
    ) -> RunningTurn:
        """Store the user's message and start the reply in the background; ``observe`` sees its events too.

        Raises:
            TurnInProgress: the conversation has a turn running (here, or on a replica that is alive).
            ModelNotConfigured, ConversationNotFound: from ``TurnRunner.start``, before anything is stored.
        """
        group = self._require_group()
        handle = self._active.acquire(user.id, conversation_id)
        try:
            if await self.runs_elsewhere(user.id, conversation_id):
                raise TurnInProgress(conversation_id)
            turn_id = str(uuid.uuid4())
            started = await self._runner.start(user, conversation_id, content, turn=NewTurn(turn_id, self.owner))
        except BaseException:
            handle.release()
            raise
        running = RunningTurn(turn_id, started, handle)
        group.start_soon(self._drive, running, 1, observe, None)
        with anyio.move_on_after(FIRST_EVENT_TIMEOUT_SECONDS):  # message_start comes first, at once
            await running.logged.wait()
        return running

    # --- turns left behind -----------------------------------------------------------------------------------------

    async def resume_stale(self) -> int:
        """Claim the turns whose replica stopped beating their heart, and resume each; how many were claimed."""
        group = self._require_group()
        stale_before = datetime.now(UTC) - self.stale_after
        try:
            candidates = await self._store.stale_turns(stale_before)
            claimed: list[TurnRecord] = []
            for candidate in candidates:
                turn = await self._store.claim_turn(candidate.id, self.owner, stale_before)
                if turn is not None:
                    claimed.append(turn)
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("could not look for interrupted turns: %s", type(exc).__name__)
            return 0
        for turn in claimed:
            logger.info(
                "taking over an interrupted turn",
                extra={"turn_id": turn.id, "conversation_id": turn.conversation_id, "attempt": turn.attempts},
            )
            group.start_soon(self._resume, turn)
        return len(claimed)

    async def _resume(self, turn: TurnRecord) -> None:
        try:
            await self._try_resume(turn)
        except (OrchestratorError, SQLAlchemyError, OSError, TimeoutError) as exc:
            # It stays claimed and running: once stale again it is taken over with one more attempt, or failed.
            logger.warning("could not resume a turn: %s", type(exc).__name__, extra={"turn_id": turn.id})
        except Exception:  # a resume's top level: one turn's failure must not take the service's task group down
            logger.exception("resuming a turn failed", extra={"turn_id": turn.id})

    async def _try_resume(self, turn: TurnRecord) -> None:
        user = UserIdentity(turn.user_id)
        try:
            handle = self._active.acquire(turn.user_id, turn.conversation_id)
        except TurnInProgress:  # a newer turn of the conversation runs here: this one is over
            await self._fail(turn, NOT_RESUMED)
            return
        try:
            stored = await self._stored_turn(turn)
            if stored is None:
                handle.release()
                return
            latest = await self._store.latest_turn(turn.user_id, turn.conversation_id)
            superseded = latest is not None and latest.id != turn.id
            if superseded or not self._policy.enabled or not self._runner.model_configured:
                handle.release()
                await self._fail(turn, NOT_RESUMED)
                return
            if turn.attempts > self._policy.max_attempts:
                handle.release()
                await self._fail(turn, NOT_RESUMED + f" (tried {turn.attempts - 1} times)")
                return
            specs = {spec.name: spec for spec in await self._tools.tools_for(user.id)}
            unanswered = stored.unanswered_calls()
            waiting = (
                set(await self._waiting_calls(user.id, turn.conversation_id)) if self._waiting_calls else set[str]()
            )
            rerun = [call for call in unanswered if call.id in waiting or safe_to_repeat(specs.get(call.name))]
            interrupted = [interrupted_result(call) for call in unanswered if call not in rerun]
            steps = list(stored.steps)
            if interrupted:
                steps += await _bounded(self._store.append_messages(user.id, turn.conversation_id, interrupted))
        except BaseException:
            handle.release()
            raise
        started = StartedTurn(user, turn.conversation_id, stored.history, stored.user_message)
        running = RunningTurn(turn.id, started, handle)
        replay = [
            MessageStart(turn.conversation_id, stored.user_message.id, self._runner.model_name),
            *replayed_events(steps, specs),
        ]

        async def go_on(emit: Emit) -> MessageEnd:
            for event in replay:
                await emit(event)
            return await self._runner.resume(started, steps, [as_model_call(call) for call in rerun], emit)

        await self._drive(running, turn.attempts, None, go_on)

    async def _stored_turn(self, turn: TurnRecord) -> StoredTurn | None:
        """The turn's messages; None (after ending the turn) when there is nothing to resume."""
        records = await self._store.list_messages(turn.user_id, turn.conversation_id)
        stored = split_turn(records, turn.user_message_id)
        if stored is None:
            await self._end(turn.id, "failed", EventPosition(turn.attempts, 1))
            return None
        final = stored.final_reply
        if final is not None:  # the reply was stored just before the replica died: the turn is over
            await self._end(turn.id, final.status, EventPosition(turn.attempts, 1))
            return None
        return stored

    async def _fail(self, turn: TurnRecord, reason: str) -> None:
        """End the turn ``failed`` with a stored reply that says why (the user's message stays as it was)."""
        [reply] = await _bounded(
            self._store.append_messages(
                turn.user_id,
                turn.conversation_id,
                [NewMessage(role="assistant", content="", status="error", error=reason)],
            )
        )
        logger.warning("an interrupted turn was not resumed", extra={"turn_id": turn.id, "attempt": turn.attempts})
        await self._log.append(turn.id, EventPosition(turn.attempts, 1), TurnError("turn_failed", reason))
        await self._log.append(
            turn.id, EventPosition(turn.attempts, 2), MessageEnd(reply.id, "error", "", 0, 0, 0, reason=reason)
        )
        await self._end(turn.id, "failed", EventPosition(turn.attempts, 3))

    def hand_over(self) -> None:
        """Cancel the turns running here without ending them, so that another replica (or this service once
        restarted) resumes them at once: for a shutdown, when resuming is on; otherwise they are stopped."""
        for running in list(self._running.values()):
            running.started.handed_over = self._policy.enabled
            running.handle.scope.cancel()

    # --- running a turn --------------------------------------------------------------------------------------------

    async def _drive(
        self,
        running: RunningTurn,
        attempt: int,
        observe: Emit | None,
        body: Callable[[Emit], Awaitable[MessageEnd]] | None,
    ) -> None:
        """Run the turn to its end, logging every event; whatever happens, the turn ends and its log is closed."""
        started, handle = running.started, running.handle
        seq = 0
        ended = False

        async def emit(event: TurnEvent) -> None:
            nonlocal seq, ended
            seq += 1
            ended = ended or isinstance(event, MessageEnd)
            await self._log.append(running.id, EventPosition(attempt, seq), event)
            running.logged.set()
            if observe is not None:
                await observe(event)

        status: TurnState = "error"
        self._running[running.id] = running
        beating = anyio.CancelScope()
        self._require_group().start_soon(self._beat, running, beating)
        try:
            with handle.scope:
                if body is None:
                    await self._runner.run(started, emit)
                else:
                    await body(emit)
            if handle.scope.cancelled_caught and not ended and not started.handed_over:
                await emit(started.end or _stopped())
        except OrchestratorError as exc:
            await emit(TurnError(error_code(exc), str(exc)))
        except Exception:  # the turn's top level: report and log, never a turn that silently never ends
            logger.exception("turn failed", extra={"conversation_id": started.conversation_id})
            await emit(TurnError("internal_error", "the reply failed because of an internal error"))
        finally:
            beating.cancel()
            del self._running[running.id]
            with anyio.CancelScope(shield=True):
                if started.end is None and started.handed_over:  # another run finishes it: no end here
                    await self._hand_over(running)
                else:
                    if started.end is not None:
                        status = started.end.status
                    # Free the conversation before the followers' streams end, so a client may post its next
                    # message then.
                    await self._record_end(running.id, status)
                    self._let_go(running)
                    await self._log.append(running.id, EventPosition(attempt, seq + 1), None)

    async def _hand_over(self, running: RunningTurn) -> None:
        if running.started.taken_over:  # not ours any more: the other replica's run goes on
            self._let_go(running)
            return
        try:
            with anyio.fail_after(WRITE_TIMEOUT_SECONDS):
                await self._store.release_turn(running.id, self.owner)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:  # it is taken over once its heartbeat is stale
            logger.warning("could not hand a turn over: %s", type(exc).__name__, extra={"turn_id": running.id})
        logger.info("turn handed over for resuming", extra={"turn_id": running.id})
        self._let_go(running)

    @staticmethod
    def _let_go(running: RunningTurn) -> None:
        running.handle.release()
        running.logged.set()
        running.done.set()

    async def _beat(self, running: RunningTurn, scope: anyio.CancelScope) -> None:
        """Touch the turn every heartbeat; a turn another replica took over (this one stalled) is stopped here."""
        with scope:
            await self._beat_until_lost(running)

    async def _beat_until_lost(self, running: RunningTurn) -> None:
        while True:
            await anyio.sleep(self._heartbeat)
            try:
                with anyio.fail_after(max(self._heartbeat, 1.0)):
                    still_ours = await self._store.beat_turn(running.id, self.owner)
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                logger.warning("turn heartbeat failed: %s", type(exc).__name__, extra={"turn_id": running.id})
                continue
            if not still_ours:
                logger.warning("another replica took over the turn; stopping it here", extra={"turn_id": running.id})
                running.started.handed_over = running.started.taken_over = True
                running.handle.scope.cancel()
                return

    async def _end(self, turn_id: str, status: TurnState, position: EventPosition) -> None:
        await self._record_end(turn_id, status)
        await self._log.append(turn_id, position, None)

    async def _record_end(self, turn_id: str, status: TurnState) -> None:
        try:
            with anyio.fail_after(WRITE_TIMEOUT_SECONDS):
                await self._store.end_turn(turn_id, self.owner, status)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:  # it stays running; a replica resumes it later
            logger.warning("could not record the end of a turn: %s", type(exc).__name__, extra={"turn_id": turn_id})

    def _is_stale(self, turn: TurnRecord) -> bool:
        return turn.heartbeat_at < datetime.now(UTC) - self.stale_after

    def _require_group(self) -> TaskGroup:
        if self._group is None:
            raise RuntimeError("the turn supervisor is not running")
        return self._group


def error_code(exc: OrchestratorError) -> str:
    """``ToolCallFailed`` -> ``tool_call_failed``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def _stopped() -> MessageEnd:
    return MessageEnd(None, "incomplete", "", 0, 0, 0, reason="stopped before the reply finished")


async def _bounded(write: Awaitable[_T]) -> _T:
    with anyio.fail_after(WRITE_TIMEOUT_SECONDS):
        return await write
    raise AssertionError("unreachable: fail_after raises")
