"""Tool call approvals: users decide their waiting calls; admins set tool policies and read the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, Field

from orchestrator.api.conversations import ConversationId
from orchestrator.api.schemas import CleanText, Strict, error_responses
from orchestrator.approvals.policy import PolicyRule, Role
from orchestrator.approvals.service import CallApprovals
from orchestrator.approvals.store import ApprovalRecord, AuditEntry, Decision
from orchestrator.deps import Admin, CurrentCaller, State
from orchestrator.errors import NotFound
from orchestrator.mcp.types import SERVER_ID_PATTERN, ToolPolicy

router = APIRouter(prefix="/api", tags=["tool call approvals"])
_errors = error_responses(401, 403, 404, 409, 422)
AUDIT_FLUSH_SECONDS = 2.0


async def get_approvals(state: State) -> CallApprovals:
    if state.approvals is None:
        raise NotFound("tool call approvals are not available in this service")
    return state.approvals


Approvals = Annotated[CallApprovals, Depends(get_approvals)]


class ApprovalDecide(Strict):
    decision: Decision = Field(
        description="once: run this call; conversation: also later calls of the tool in this conversation; "
        "always: in every conversation of yours; deny: do not run it (the model is told)"
    )


class ApprovalOut(BaseModel):
    id: str
    conversation_id: str
    tool_call_id: str
    name: str
    server_id: str
    tool: str
    arguments: str = Field(description="the call's arguments exactly as the model wrote them (JSON)")
    status: Literal["pending", "approved", "denied", "expired"]
    decision: str | None
    created_at: datetime
    decided_at: datetime | None


class ToolPolicyIn(Strict):
    server_id: Annotated[str, Field(pattern=SERVER_ID_PATTERN)]
    tool: Annotated[CleanText, Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="the server's own tool name; none: every tool of the server"
    )
    role: Role | None = Field(default=None, description="admin or user; none: everyone")
    policy: ToolPolicy


class ToolPolicyOut(BaseModel):
    server_id: str
    tool: str | None
    role: Role | None
    policy: ToolPolicy
    updated_by: str | None
    updated_at: datetime | None


class AuditEntryOut(BaseModel):
    id: str
    created_at: datetime
    user_id: str
    conversation_id: str
    tool_call_id: str
    approval_id: str | None
    server_id: str
    tool: str
    arguments: str
    decision: str = Field(description="run, deny, once, conversation, always, granted or timeout")
    actor: str = Field(description="policy, user, grant (an earlier 'conversation' or 'always') or timeout")
    decided_by: str | None


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    total: int
    limit: int
    offset: int


def _approval_out(record: ApprovalRecord) -> ApprovalOut:
    return ApprovalOut(
        id=record.id,
        conversation_id=record.conversation_id,
        tool_call_id=record.tool_call_id,
        name=record.name,
        server_id=record.server_id,
        tool=record.tool,
        arguments=record.arguments,
        status=record.status,
        decision=record.decision,
        created_at=record.created_at,
        decided_at=record.decided_at,
    )


def _rule_out(rule: PolicyRule) -> ToolPolicyOut:
    return ToolPolicyOut(
        server_id=rule.server_id,
        tool=rule.tool,
        role=rule.role,
        policy=rule.policy,
        updated_by=rule.updated_by,
        updated_at=rule.updated_at,
    )


def _audit_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id,
        created_at=entry.created_at,
        user_id=entry.user_id,
        conversation_id=entry.conversation_id,
        tool_call_id=entry.tool_call_id,
        approval_id=entry.approval_id,
        server_id=entry.server_id,
        tool=entry.tool,
        arguments=entry.arguments,
        decision=entry.decision,
        actor=entry.actor,
        decided_by=entry.decided_by,
    )


@router.get("/conversations/{conversation_id}/approvals", responses=_errors)
async def waiting_approvals(
    state: State, approvals: Approvals, caller: CurrentCaller, conversation_id: ConversationId
) -> list[ApprovalOut]:
    """Tool calls of this conversation waiting for the caller's decision (also announced on the turn's stream)."""
    await state.store.get_conversation(caller.user.id, conversation_id)
    return [_approval_out(record) for record in await approvals.pending(caller.user.id, conversation_id)]


@router.post("/conversations/{conversation_id}/approvals/{approval_id}", responses=_errors)
async def decide_approval(
    approvals: Approvals,
    caller: CurrentCaller,
    conversation_id: ConversationId,
    approval_id: Annotated[str, Path(max_length=100)],
    body: ApprovalDecide,
) -> ApprovalOut:
    """Decide a waiting tool call; the turn waiting for it goes on (on whichever replica runs it).

    Another user's approval is not found (404); one decided already, or no longer waiting, is a conflict (409).
    """
    record = await approvals.decide(caller.user.id, conversation_id, approval_id, body.decision)
    return _approval_out(record)


@router.get("/tool-policies", responses=_errors)
async def list_tool_policies(approvals: Approvals, _admin: Admin) -> list[ToolPolicyOut]:
    """The admins' tool policy rules (the servers files' ``toolPolicy`` entries are not listed here)."""
    return [_rule_out(rule) for rule in await approvals.store.rules()]


@router.put("/tool-policies", responses=_errors)
async def put_tool_policy(approvals: Approvals, admin: Admin, body: ToolPolicyIn) -> ToolPolicyOut:
    """Set the policy of a server's tools, of one tool, for one role or everyone; it applies to the next call."""
    rule = PolicyRule(body.server_id, body.tool, body.role, body.policy, admin.user.id, datetime.now(UTC))
    await approvals.put_rule(rule)
    return _rule_out(rule)


@router.delete("/tool-policies", status_code=status.HTTP_204_NO_CONTENT, responses=_errors)
async def delete_tool_policy(
    approvals: Approvals,
    _admin: Admin,
    server_id: Annotated[str, Query(pattern=SERVER_ID_PATTERN)],
    tool: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
    role: Role | None = None,
) -> None:
    """Remove one rule (the same server, tool and role it was set with)."""
    await approvals.delete_rule(server_id, tool, role)


@router.get("/approvals/audit", responses=_errors)
async def approval_audit(
    approvals: Approvals,
    _admin: Admin,
    user_id: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AuditPage:
    """Every decision on a tool call, newest first: users' decisions and automatic ones (policy, grant, timeout)."""
    with anyio.move_on_after(AUDIT_FLUSH_SECONDS):  # this replica's latest automatic decisions, if it can
        await approvals.audit_written()
    entries, total = await approvals.store.audit_entries(user_id, limit=limit, offset=offset)
    return AuditPage(entries=[_audit_out(entry) for entry in entries], total=total, limit=limit, offset=offset)
