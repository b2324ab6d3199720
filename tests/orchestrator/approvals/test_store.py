"""Approvals, grants, rules and the audit log in SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from orchestrator.approvals.policy import PolicyRule
from orchestrator.approvals.store import ApprovalNotDecidable, ApprovalRecord, ApprovalStore, CallFacts
from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import UserIdentity

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


async def conversation_of(store: SqlStore, name: str) -> tuple[str, str]:
    user = UserIdentity(id=f"{name}-{uuid4().hex}")
    await store.ensure_user(user)
    return user.id, (await store.create_conversation(user.id)).id


def pending(user_id: str, conversation_id: str, tool_call_id: str = "call_1") -> ApprovalRecord:
    return ApprovalRecord(
        id=str(uuid4()),
        user_id=user_id,
        conversation_id=conversation_id,
        tool_call_id=tool_call_id,
        name="files__delete_file",
        server_id="files",
        tool="delete_file",
        arguments='{"path": "/tmp/x"}',
        status="pending",
        decision=None,
        decided_by=None,
        created_at=NOW,
        decided_at=None,
    )


async def test_asking_again_for_the_same_call_finds_the_same_approval_pending_or_decided(
    approvals: ApprovalStore, store: SqlStore
) -> None:
    user_id, conversation_id = await conversation_of(store, "ada")
    first = await approvals.ask(pending(user_id, conversation_id))

    again = await approvals.ask(pending(user_id, conversation_id))
    await approvals.decide(user_id, conversation_id, first.id, "once", NOW)
    after_decision = await approvals.ask(pending(user_id, conversation_id))

    assert again == first
    assert (after_decision.id, after_decision.status, after_decision.decision) == (first.id, "approved", "once")


async def test_a_decision_is_recorded_once_with_its_grant_and_audit_entry(
    approvals: ApprovalStore, store: SqlStore
) -> None:
    user_id, conversation_id = await conversation_of(store, "ada")
    _, other_conversation = await conversation_of(store, "ada")
    mallory, mallorys_conversation = await conversation_of(store, "mallory")
    record = await approvals.ask(pending(user_id, conversation_id))

    assert await approvals.decide(mallory, mallorys_conversation, record.id, "always", NOW) is None
    assert await approvals.decide(mallory, conversation_id, record.id, "always", NOW) is None
    decided = await approvals.decide(user_id, conversation_id, record.id, "conversation", NOW)
    with pytest.raises(ApprovalNotDecidable):
        await approvals.decide(user_id, conversation_id, record.id, "deny", NOW)
    expired = await approvals.expire(record.id, NOW + timedelta(minutes=5))

    assert decided is not None
    assert expired.status == "approved"
    assert await approvals.granted(user_id, conversation_id, "files", "delete_file")
    assert not await approvals.granted(user_id, other_conversation, "files", "delete_file")
    assert not await approvals.granted(mallory, conversation_id, "files", "delete_file")
    entries, total = await approvals.audit_entries(user_id, limit=10, offset=0)
    assert total == 1
    assert [(entry.decision, entry.actor, entry.decided_by, entry.approval_id) for entry in entries] == [
        ("conversation", "user", user_id, record.id)
    ]


async def test_an_undecided_approval_expires_into_the_audit_log(approvals: ApprovalStore, store: SqlStore) -> None:
    user_id, conversation_id = await conversation_of(store, "ada")
    record = await approvals.ask(pending(user_id, conversation_id))
    facts = CallFacts(user_id, conversation_id, "call_0", "files", "read_file", "{}")
    await approvals.audit(facts, "run", "policy", NOW - timedelta(seconds=1))

    expired = await approvals.expire(record.id, NOW)

    assert (expired.status, expired.decision) == ("expired", "timeout")
    assert await approvals.pending(user_id, conversation_id) == []
    entries, _ = await approvals.audit_entries(user_id, limit=10, offset=0)
    assert [(entry.tool, entry.decision, entry.actor) for entry in entries] == [
        ("delete_file", "timeout", "timeout"),
        ("read_file", "run", "policy"),
    ]


async def test_a_rule_is_replaced_by_one_for_the_same_server_tool_and_role_and_deleted_by_them(
    approvals: ApprovalStore,
) -> None:
    server_id = f"s{uuid4().hex[:12]}"
    rule = PolicyRule(server_id, "delete_file", "user", "deny", "alice", NOW)
    await approvals.put_rule(rule)
    await approvals.put_rule(dataclasses.replace(rule, policy="ask"))
    await approvals.put_rule(PolicyRule(server_id, None, None, "run", "alice", NOW))

    mine = [rule for rule in await approvals.rules() if rule.server_id == server_id]
    deleted = await approvals.delete_rule(server_id, "delete_file", "user")
    deleted_again = await approvals.delete_rule(server_id, "delete_file", "user")

    assert [(rule.tool, rule.role, rule.policy) for rule in mine] == [
        (None, None, "run"),
        ("delete_file", "user", "ask"),
    ]
    assert (deleted, deleted_again) == (True, False)
