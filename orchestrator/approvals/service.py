"""Tool call approvals: the gate every MCP tool call of a turn passes, and the user's decisions.

A call whose policy is ``ask`` (see ``orchestrator.approvals.policy``), and that no grant of the user covers, is
stored as a pending approval, shown in the conversation (``approval_requested``) and waits for the decision,
bounded by ``TOOL_APPROVAL_TIMEOUT_SECONDS``. The database is the truth: the decision may be made on any replica,
even after the turn's process restarted. The replica that records it wakes its waiting turns at once and tells the
others on the bus; a waiting turn also looks at the database every few seconds, in case a message was lost.

Asking is idempotent: a call (conversation, tool call id) asked about again, by a resumed turn, finds its approval,
decided or still pending.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import uuid4

import anyio

from orchestrator.approvals.policy import PolicyRule, ResolvedPolicy, Role, Roles, resolve_policy
from orchestrator.approvals.store import (
    Actor,
    ApprovalNotDecidable,
    ApprovalRecord,
    ApprovalStore,
    AuditDecision,
    CallFacts,
    Decision,
)
from orchestrator.cluster.bus import Message, MessageBus
from orchestrator.errors import Conflict, NotFound, ServerNotFound
from orchestrator.loop.events import ApprovalEnded, ApprovalRequested, TurnEvent
from orchestrator.loop.gate import GatedCall
from orchestrator.mcp.protected import SIGN_IN_TOOL
from orchestrator.mcp.types import ToolPolicy, ToolPolicyConfig, ToolSpec
from orchestrator.memory.store import utc_now

logger = logging.getLogger(__name__)

CHANNEL = "approvals"
RECHECK_SECONDS = 2.0
RULES_TTL_SECONDS = 10.0
"""How long the admins' rules are trusted without reading them again (a change on another replica is announced;
this bounds a lost announcement)."""
AUDIT_QUEUE = 1_000
AUDIT_WRITE_SECONDS = 10.0

DENIED_BY_USER = "The user denied this tool call; it did not run. Do not retry it unless the user asks."
DENIED_BY_POLICY = "This tool is not allowed by the administrator's policy; the call did not run."
TIMED_OUT = "Nobody approved this tool call in time; it did not run."
NOBODY_TO_ASK = (
    "This tool needs the user's approval, which cannot be given from here; the call did not run. The user can allow "
    "it always in the assistant's chat."
)


class ApprovalNotFound(NotFound):
    def __init__(self, approval_id: str) -> None:
        self.approval_id = approval_id
        super().__init__(f"no tool call approval {approval_id!r} in this conversation")


class ServerPolicies(Protocol):
    """What the MCP layer knows about a server's tool policy (the registry is the real one)."""

    def config_policy(self, server_id: str) -> ToolPolicyConfig | None: ...

    def built_in(self, spec: ToolSpec) -> bool:
        """Whether the tool is the orchestrator's own (a protected server's sign-in), which always runs."""
        ...


class RegistryPolicies:
    """:class:`ServerPolicies` from the registry's server configs."""

    def __init__(self, registry: _Registry) -> None:
        self._registry = registry

    def config_policy(self, server_id: str) -> ToolPolicyConfig | None:
        try:
            return self._registry.config(server_id).tool_policy
        except ServerNotFound:
            return None

    def built_in(self, spec: ToolSpec) -> bool:
        try:
            return spec.tool == SIGN_IN_TOOL and self._registry.is_protected(spec.server_id)
        except ServerNotFound:
            return False


class _Config(Protocol):
    @property
    def tool_policy(self) -> ToolPolicyConfig | None: ...


class _Registry(Protocol):
    def config(self, server_id: str) -> _Config: ...

    def is_protected(self, server_id: str) -> bool: ...


class _AuditTrail:
    """Writes automatic decisions (policy, grant) off the tool call's path: one task, in order, queue bounded."""

    def __init__(self, store: ApprovalStore) -> None:
        self._store = store
        self._send, self._receive = anyio.create_memory_object_stream[tuple[CallFacts, AuditDecision, Actor, datetime]](
            AUDIT_QUEUE
        )
        self._queued = 0
        self._idle = anyio.Event()
        self._idle.set()

    async def record(self, facts: CallFacts, decision: AuditDecision, actor: Actor, at: datetime) -> None:
        try:
            self._send.send_nowait((facts, decision, actor, at))
        except anyio.WouldBlock:  # the database is slow: the call waits for its entry rather than lose it
            await self._store.audit(facts, decision, actor, at)
            return
        except anyio.ClosedResourceError:  # closing: a call finishing late writes its own entry
            await self._store.audit(facts, decision, actor, at)
            return
        if self._queued == 0:
            self._idle = anyio.Event()
        self._queued += 1

    async def written(self) -> None:
        """Wait until every entry recorded so far is in the database (or failed to be written, which is logged)."""
        await self._idle.wait()

    def close(self) -> None:
        self._send.close()

    async def run(self) -> None:
        async with self._receive:
            async for facts, decision, actor, at in self._receive:
                try:
                    with anyio.fail_after(AUDIT_WRITE_SECONDS):
                        await self._store.audit(facts, decision, actor, at)
                except Exception:  # boundary: a failed write must not stop the entries after it
                    logger.exception("an audit entry of tool call %s was not written", facts.tool_call_id)
                finally:
                    self._queued -= 1
                    if self._queued == 0:
                        self._idle.set()


class CallApprovals:
    """Implements the loop's ``ToolGate``; the API records decisions through :meth:`decide`.

    Used as an async context manager: it owns the task that writes automatic decisions to the audit log, and
    writes what is left when it closes.

    Args:
        store: where approvals, grants, rules and the audit log are kept.
        bus: tells the other replicas that a decision was made.
        servers: the servers file's policies.
        roles: whose calls are an admin's.
        timeout_seconds: how long a call waits for a decision before it is refused.
        recheck_seconds: how often a waiting call looks at the database (a lost bus message costs no more).
    """

    def __init__(
        self,
        store: ApprovalStore,
        bus: MessageBus,
        servers: ServerPolicies,
        roles: Roles,
        *,
        timeout_seconds: float,
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self._bus = bus
        self._servers = servers
        self._roles = roles
        self._timeout = timeout_seconds
        self._recheck = recheck_seconds
        self._clock = clock
        self._waiters: dict[str, anyio.Event] = {}
        self._rules: list[PolicyRule] | None = None
        self._rules_read_at = 0.0
        self._audit = _AuditTrail(store)
        bus.subscribe(CHANNEL, self._on_message)
        bus.on_resync(self._resync)

    async def __aenter__(self) -> Self:
        self._exit = anyio.create_task_group()
        group = await self._exit.__aenter__()
        group.start_soon(self._audit.run, name="approval-audit")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._audit.close()
        await self._exit.__aexit__(exc_type, exc, tb)

    async def audit_written(self) -> None:
        """Wait until this replica's automatic decisions so far are in the audit log."""
        await self._audit.written()

    # --- policies ----------------------------------------------------------------------------------------------

    async def policies(self, user_id: str, specs: Sequence[ToolSpec]) -> dict[str, ResolvedPolicy]:
        """The effective policy of each tool (by exposed name) for the user's calls."""
        rules = await self._current_rules()
        role = self._roles.of(user_id)
        resolved: dict[str, ResolvedPolicy] = {}
        for spec in specs:
            if self._servers.built_in(spec):
                resolved[spec.name] = ResolvedPolicy("run", "built-in")
            else:
                resolved[spec.name] = resolve_policy(spec, role, self._servers.config_policy(spec.server_id), rules)
        return resolved

    async def put_rule(self, rule: PolicyRule) -> None:
        await self.store.put_rule(rule)
        await self._rules_changed()

    async def delete_rule(self, server_id: str, tool: str | None, role: Role | None) -> None:
        """Raises: NotFound (no rule for this server, tool and role)."""
        if not await self.store.delete_rule(server_id, tool, role):
            raise NotFound("no such tool policy rule")
        await self._rules_changed()

    async def _current_rules(self) -> list[PolicyRule]:
        if self._rules is None or anyio.current_time() - self._rules_read_at > RULES_TTL_SECONDS:
            self._rules_read_at = anyio.current_time()
            self._rules = await self.store.rules()
        return self._rules

    async def _rules_changed(self) -> None:
        self._rules = None
        await self._bus.publish(CHANNEL, {"kind": "rules"})

    # --- the gate ----------------------------------------------------------------------------------------------

    async def admit(self, call: GatedCall, emit: Callable[[TurnEvent], Awaitable[None]]) -> str | None:
        spec = call.spec
        if spec is None:
            return None
        facts = _facts(call, spec)
        decided, refusal = await self._without_asking(facts, spec, call.conversation_id)
        if decided:
            return refusal
        record = await self.store.ask(
            ApprovalRecord(
                id=str(uuid4()),
                user_id=call.user_id,
                conversation_id=call.conversation_id,
                tool_call_id=call.tool_call_id,
                name=call.name,
                server_id=spec.server_id,
                tool=spec.tool,
                arguments=call.arguments,
                status="pending",
                decision=None,
                decided_by=None,
                created_at=self._clock(),
                decided_at=None,
            )
        )
        if record.status == "pending":
            await emit(
                ApprovalRequested(
                    record.id, call.tool_call_id, call.name, spec.server_id, spec.tool, record.arguments, self._timeout
                )
            )
            record = await self._wait(record)
            await emit(ApprovalEnded(record.id, call.tool_call_id, record.decision or "timeout"))
        if record.status == "approved":
            return None
        if record.status == "denied":
            return DENIED_BY_USER
        return TIMED_OUT

    async def admit_unattended(self, call: GatedCall) -> str | None:
        """Like ``admit`` where nobody can be asked (the ``/v1`` API, the ``/mcp`` endpoint): a call that would ask
        runs only under the user's standing ("always") grant; otherwise the model or client is told why not."""
        spec = call.spec
        if spec is None:
            return None
        facts = _facts(call, spec)
        decided, refusal = await self._without_asking(facts, spec, "")  # "": only grants for every conversation
        if decided:
            return refusal
        await self._audit.record(facts, "deny", "policy", self._clock())
        return NOBODY_TO_ASK

    async def _without_asking(self, facts: CallFacts, spec: ToolSpec, conversation_id: str) -> tuple[bool, str | None]:
        """What the policy or a standing grant of the tool (in ``conversation_id`` or in all of the user's) decides,
        audited: ``(True, refusal or None)``; ``(False, None)`` when the user must be asked."""
        policy: ToolPolicy = (await self.policies(facts.user_id, [spec]))[spec.name].policy
        if policy == "run":
            await self._audit.record(facts, "run", "policy", self._clock())
            return True, None
        if policy == "deny":
            await self._audit.record(facts, "deny", "policy", self._clock())
            return True, DENIED_BY_POLICY
        if await self.store.granted(facts.user_id, conversation_id, spec.server_id, spec.tool):
            await self._audit.record(facts, "granted", "grant", self._clock())
            return True, None
        return False, None

    async def _wait(self, record: ApprovalRecord) -> ApprovalRecord:
        """The approval once decided, or expired after the timeout (a decision that comes first wins)."""
        waiter = self._waiters.setdefault(record.id, anyio.Event())
        decided: ApprovalRecord | None = None
        try:
            with anyio.move_on_after(self._timeout):
                while decided is None:
                    with anyio.move_on_after(self._recheck):
                        await waiter.wait()
                    if waiter.is_set():
                        waiter = self._waiters[record.id] = anyio.Event()
                    current = await self.store.get(record.id)
                    if current is None or current.status != "pending":
                        decided = current or record
        finally:
            self._waiters.pop(record.id, None)
        if decided is not None:
            return decided
        # The expiry is written even when the turn is stopped meanwhile, so the row never stays pending for nothing.
        with anyio.CancelScope(shield=True):
            return await self.store.expire(record.id, self._clock())
        raise AssertionError("unreachable: a shielded scope swallows nothing")

    # --- decisions ---------------------------------------------------------------------------------------------

    async def pending(self, user_id: str, conversation_id: str) -> list[ApprovalRecord]:
        return await self.store.pending(user_id, conversation_id)

    async def waiting_calls(self, user_id: str, conversation_id: str) -> set[str]:
        """The ids of the conversation's tool calls still waiting for the user: none of them reached its server."""
        return {record.tool_call_id for record in await self.store.pending(user_id, conversation_id)}

    async def decide(self, user_id: str, conversation_id: str, approval_id: str, decision: Decision) -> ApprovalRecord:
        """Record the user's decision on their pending call; the waiting turn, on whichever replica, goes on.

        Raises:
            ApprovalNotFound: the user has no such call in the conversation (another user's is not found either).
            Conflict: the call was decided already or is no longer waiting.
        """
        try:
            record = await self.store.decide(user_id, conversation_id, approval_id, decision, self._clock())
        except ApprovalNotDecidable as exc:
            raise Conflict(f"this tool call is no longer waiting for a decision ({exc.record.status})") from None
        if record is None:
            raise ApprovalNotFound(approval_id[:100])
        self._wake(approval_id)
        await self._bus.publish(CHANNEL, {"kind": "decided", "approval_id": approval_id})
        logger.info(
            "tool call %s decided: %s",
            record.tool_call_id,
            decision,
            extra={"conversation_id": conversation_id, "server_id": record.server_id, "tool": record.tool},
        )
        return record

    def _wake(self, approval_id: str) -> None:
        waiter = self._waiters.get(approval_id)
        if waiter is not None:
            waiter.set()

    async def _on_message(self, message: Message) -> None:
        approval_id = message.get("approval_id")
        if message.get("kind") == "rules":
            self._rules = None
        elif isinstance(approval_id, str):
            self._wake(approval_id)

    async def _resync(self) -> None:
        """Messages may have been missed: read the rules again, and let every waiting call look at the database."""
        self._rules = None
        for waiter in list(self._waiters.values()):
            waiter.set()


def _facts(call: GatedCall, spec: ToolSpec) -> CallFacts:
    return CallFacts(call.user_id, call.conversation_id, call.tool_call_id, spec.server_id, spec.tool, call.arguments)


class UnattendedGate:
    """The tool gate of turns nobody watches (the ``/v1`` API): the approvals' policies and the user's standing
    grants decide; nothing is asked."""

    def __init__(self, approvals: CallApprovals) -> None:
        self._approvals = approvals

    async def admit(self, call: GatedCall, emit: Callable[[TurnEvent], Awaitable[None]]) -> str | None:
        return await self._approvals.admit_unattended(call)
