"""Where approvals live: pending and decided calls, users' grants, admins' rules and the audit log (SQL).

Each query is a sync function over a ``Connection``; :class:`ApprovalStore` runs them on the ``Database``. Every
query about a call or a grant is scoped to one user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import uuid4

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from orchestrator.approvals.policy import PolicyRule, Role
from orchestrator.memory.db import Database
from orchestrator.memory.models import ToolCallApproval, ToolCallAudit, ToolCallGrant, ToolPolicyRule

ApprovalStatus = Literal["pending", "approved", "denied", "expired"]
Decision = Literal["once", "conversation", "always", "deny"]
AuditDecision = Literal["run", "deny", "once", "conversation", "always", "granted", "timeout"]
Actor = Literal["policy", "user", "grant", "timeout"]

ANY_CONVERSATION = ""
"""The ``conversation_id`` of a grant for every conversation of the user."""


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    id: str
    user_id: str
    conversation_id: str
    tool_call_id: str
    name: str
    server_id: str
    tool: str
    arguments: str
    status: ApprovalStatus
    decision: Decision | Literal["timeout"] | None
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the audit log says about the call a decision was about."""

    user_id: str
    conversation_id: str
    tool_call_id: str
    server_id: str
    tool: str
    arguments: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    created_at: datetime
    user_id: str
    conversation_id: str
    tool_call_id: str
    approval_id: str | None
    server_id: str
    tool: str
    arguments: str
    decision: AuditDecision
    actor: Actor
    decided_by: str | None


class ApprovalNotDecidable(Exception):
    """The approval exists but was decided already (or expired); carries it."""

    def __init__(self, record: ApprovalRecord) -> None:
        self.record = record
        super().__init__(f"approval {record.id} is {record.status}")


_APPROVAL_COLUMNS = (
    ToolCallApproval.id,
    ToolCallApproval.user_id,
    ToolCallApproval.conversation_id,
    ToolCallApproval.tool_call_id,
    ToolCallApproval.name,
    ToolCallApproval.server_id,
    ToolCallApproval.tool,
    ToolCallApproval.arguments,
    ToolCallApproval.status,
    ToolCallApproval.decision,
    ToolCallApproval.decided_by,
    ToolCallApproval.created_at,
    ToolCallApproval.decided_at,
)
_AUDIT_COLUMNS = (
    ToolCallAudit.id,
    ToolCallAudit.created_at,
    ToolCallAudit.user_id,
    ToolCallAudit.conversation_id,
    ToolCallAudit.tool_call_id,
    ToolCallAudit.approval_id,
    ToolCallAudit.server_id,
    ToolCallAudit.tool,
    ToolCallAudit.arguments,
    ToolCallAudit.decision,
    ToolCallAudit.actor,
    ToolCallAudit.decided_by,
)
_INSERT_APPROVAL = {
    "postgresql": postgresql.insert(ToolCallApproval).on_conflict_do_nothing(
        index_elements=["conversation_id", "tool_call_id"]
    ),
    "sqlite": sqlite.insert(ToolCallApproval).on_conflict_do_nothing(
        index_elements=["conversation_id", "tool_call_id"]
    ),
}
_INSERT_GRANT = {
    "postgresql": postgresql.insert(ToolCallGrant).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(ToolCallGrant).on_conflict_do_nothing(),
}


def _put_rule(dialect_insert: Any) -> Any:
    statement = dialect_insert(ToolPolicyRule)
    return statement.on_conflict_do_update(
        index_elements=["server_id", "tool", "role"],
        set_={name: statement.excluded[name] for name in ("policy", "updated_by", "updated_at")},
    )


_PUT_RULE = {"postgresql": _put_rule(postgresql.insert), "sqlite": _put_rule(sqlite.insert)}


def _approval(row: Sequence[Any]) -> ApprovalRecord:
    return ApprovalRecord(*row)


def _audit(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(*row)


def _rule(row: Sequence[Any]) -> PolicyRule:
    server_id, tool, role, policy, updated_by, updated_at = row
    return PolicyRule(server_id, tool or None, role or None, policy, updated_by, updated_at)


def _audit_values(
    facts: CallFacts,
    approval_id: str | None,
    decision: AuditDecision,
    actor: Actor,
    decided_by: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": str(uuid4()),
        "created_at": now,
        "user_id": facts.user_id,
        "conversation_id": facts.conversation_id,
        "tool_call_id": facts.tool_call_id,
        "approval_id": approval_id,
        "server_id": facts.server_id,
        "tool": facts.tool,
        "arguments": facts.arguments,
        "decision": decision,
        "actor": actor,
        "decided_by": decided_by,
    }


def _facts(record: ApprovalRecord) -> CallFacts:
    return CallFacts(
        record.user_id, record.conversation_id, record.tool_call_id, record.server_id, record.tool, record.arguments
    )


class ApprovalStore:
    """Runs the approval queries on a ``Database`` migrated to head."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # --- approvals ---------------------------------------------------------------------------------------------

    async def ask(self, record: ApprovalRecord) -> ApprovalRecord:
        """Store ``record`` unless its call (conversation, tool call id) has one already; returns the stored one."""

        def operation(connection: Connection) -> ApprovalRecord:
            values = {column.key: getattr(record, column.key) for column in _APPROVAL_COLUMNS}
            connection.execute(_INSERT_APPROVAL[connection.dialect.name], values)
            row = connection.execute(
                select(*_APPROVAL_COLUMNS).where(
                    ToolCallApproval.conversation_id == record.conversation_id,
                    ToolCallApproval.tool_call_id == record.tool_call_id,
                )
            ).one()
            return _approval(row)

        return await self._database.run_in_transaction(operation)

    async def get(self, approval_id: str) -> ApprovalRecord | None:
        def operation(connection: Connection) -> ApprovalRecord | None:
            row = connection.execute(select(*_APPROVAL_COLUMNS).where(ToolCallApproval.id == approval_id)).first()
            return _approval(row) if row is not None else None

        return await self._database.run(operation)

    async def pending(self, user_id: str, conversation_id: str) -> list[ApprovalRecord]:
        """The user's calls still waiting for a decision in the conversation, oldest first."""

        def operation(connection: Connection) -> list[ApprovalRecord]:
            rows = connection.execute(
                select(*_APPROVAL_COLUMNS)
                .where(
                    ToolCallApproval.user_id == user_id,
                    ToolCallApproval.conversation_id == conversation_id,
                    ToolCallApproval.status == "pending",
                )
                .order_by(ToolCallApproval.created_at, ToolCallApproval.id)
            )
            return [_approval(row) for row in rows]

        return await self._database.run(operation)

    async def decide(
        self, user_id: str, conversation_id: str, approval_id: str, decision: Decision, now: datetime
    ) -> ApprovalRecord | None:
        """Record the user's decision on their pending call, its grant and its audit entry, in one transaction.

        Returns ``None`` when the user has no such call in the conversation.

        Raises:
            ApprovalNotDecidable: the call was decided already, or its wait timed out.
        """

        def operation(connection: Connection) -> ApprovalRecord | None:
            mine = and_(
                ToolCallApproval.id == approval_id,
                ToolCallApproval.user_id == user_id,
                ToolCallApproval.conversation_id == conversation_id,
            )
            changed = connection.execute(
                update(ToolCallApproval)
                .where(mine, ToolCallApproval.status == "pending")
                .values(
                    status="denied" if decision == "deny" else "approved",
                    decision=decision,
                    decided_by=user_id,
                    decided_at=now,
                )
            ).rowcount
            row = connection.execute(select(*_APPROVAL_COLUMNS).where(mine)).first()
            if row is None:
                return None
            record = _approval(row)
            if not changed:
                raise ApprovalNotDecidable(record)
            if decision in ("conversation", "always"):
                connection.execute(
                    _INSERT_GRANT[connection.dialect.name],
                    {
                        "user_id": user_id,
                        "server_id": record.server_id,
                        "tool": record.tool,
                        "conversation_id": conversation_id if decision == "conversation" else ANY_CONVERSATION,
                        "created_at": now,
                    },
                )
            connection.execute(
                insert(ToolCallAudit),
                _audit_values(_facts(record), record.id, decision, "user", user_id, now),
            )
            return record

        return await self._database.run_in_transaction(operation)

    async def expire(self, approval_id: str, now: datetime) -> ApprovalRecord:
        """Mark a call nobody decided in time as expired (and audit it); a decision that came first wins."""

        def operation(connection: Connection) -> ApprovalRecord:
            changed = connection.execute(
                update(ToolCallApproval)
                .where(ToolCallApproval.id == approval_id, ToolCallApproval.status == "pending")
                .values(status="expired", decision="timeout", decided_at=now)
            ).rowcount
            record = _approval(
                connection.execute(select(*_APPROVAL_COLUMNS).where(ToolCallApproval.id == approval_id)).one()
            )
            if changed:
                connection.execute(
                    insert(ToolCallAudit),
                    _audit_values(_facts(record), record.id, "timeout", "timeout", None, now),
                )
            return record

        return await self._database.run_in_transaction(operation)

    # --- grants ------------------------------------------------------------------------------------------------

    async def granted(self, user_id: str, conversation_id: str, server_id: str, tool: str) -> bool:
        """Whether the user allowed the tool in this conversation or in all of theirs."""

        def operation(connection: Connection) -> bool:
            found = connection.execute(
                select(ToolCallGrant.user_id)
                .where(
                    ToolCallGrant.user_id == user_id,
                    ToolCallGrant.server_id == server_id,
                    ToolCallGrant.tool == tool,
                    or_(
                        ToolCallGrant.conversation_id == conversation_id,
                        ToolCallGrant.conversation_id == ANY_CONVERSATION,
                    ),
                )
                .limit(1)
            ).first()
            return found is not None

        return await self._database.run(operation)

    # --- rules -------------------------------------------------------------------------------------------------

    async def rules(self) -> list[PolicyRule]:
        def operation(connection: Connection) -> list[PolicyRule]:
            rows = connection.execute(
                select(
                    ToolPolicyRule.server_id,
                    ToolPolicyRule.tool,
                    ToolPolicyRule.role,
                    ToolPolicyRule.policy,
                    ToolPolicyRule.updated_by,
                    ToolPolicyRule.updated_at,
                ).order_by(ToolPolicyRule.server_id, ToolPolicyRule.tool, ToolPolicyRule.role)
            )
            return [_rule(row) for row in rows]

        return await self._database.run(operation)

    async def put_rule(self, rule: PolicyRule) -> None:
        values = {
            "server_id": rule.server_id,
            "tool": rule.tool or "",
            "role": rule.role or "",
            "policy": rule.policy,
            "updated_by": rule.updated_by,
            "updated_at": rule.updated_at or datetime.now(UTC),
        }
        await self._database.run(lambda connection: connection.execute(_PUT_RULE[connection.dialect.name], values))

    async def delete_rule(self, server_id: str, tool: str | None, role: Role | None) -> bool:
        def operation(connection: Connection) -> bool:
            deleted = connection.execute(
                delete(ToolPolicyRule).where(
                    ToolPolicyRule.server_id == server_id,
                    ToolPolicyRule.tool == (tool or ""),
                    ToolPolicyRule.role == (role or ""),
                )
            ).rowcount
            return deleted > 0

        return await self._database.run(operation)

    # --- audit -------------------------------------------------------------------------------------------------

    async def audit(
        self,
        facts: CallFacts,
        decision: AuditDecision,
        actor: Actor,
        now: datetime,
        *,
        approval_id: str | None = None,
    ) -> None:
        """Record an automatic decision (one statement, committed without waiting for the disk)."""
        values = _audit_values(facts, approval_id, decision, actor, None, now)
        await self._database.run(lambda connection: connection.execute(insert(ToolCallAudit), values), relaxed=True)

    async def audit_entries(self, user_id: str | None, *, limit: int, offset: int) -> tuple[list[AuditEntry], int]:
        """Newest first, optionally of one user, and how many there are in all."""

        def operation(connection: Connection) -> tuple[list[AuditEntry], int]:
            where = [ToolCallAudit.user_id == user_id] if user_id is not None else []
            rows = connection.execute(
                select(*_AUDIT_COLUMNS)
                .where(*where)
                .order_by(ToolCallAudit.created_at.desc(), ToolCallAudit.id.desc())
                .limit(limit)
                .offset(offset)
            )
            entries = [_audit(row) for row in rows]
            total = connection.execute(select(func.count()).select_from(ToolCallAudit).where(*where)).scalar_one()
            return entries, int(total)

        return await self._database.run_in_transaction(operation)
