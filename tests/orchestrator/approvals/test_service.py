"""The gate a tool call passes: a decision reaches the waiting call through the bus, or else from the database."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from uuid import uuid4

import anyio
import pytest

from orchestrator.approvals.policy import Roles
from orchestrator.approvals.service import DENIED_BY_USER, CallApprovals
from orchestrator.approvals.store import ApprovalStore
from orchestrator.cluster.bus import LocalBus, LocalHub
from orchestrator.loop.events import ApprovalEnded, ApprovalRequested, TurnEvent
from orchestrator.loop.gate import GatedCall
from orchestrator.mcp.types import ToolPolicyConfig, ToolSpec
from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import UserIdentity

DELETE = ToolSpec("files__delete", "files", "delete", "Delete a file.", {"type": "object"}, {"destructiveHint": True})
WAIT_SECONDS = 5.0


class FileServers:
    def config_policy(self, server_id: str) -> ToolPolicyConfig | None:
        return None

    def built_in(self, spec: ToolSpec) -> bool:
        return False


class Asked:
    """The events a gated call emits; ``requested`` is set once it waits for a decision."""

    def __init__(self) -> None:
        self.events: list[TurnEvent] = []
        self.requested = anyio.Event()

    async def emit(self, event: TurnEvent) -> None:
        self.events.append(event)
        if isinstance(event, ApprovalRequested):
            self.requested.set()

    @property
    def approval_id(self) -> str:
        return next(event.id for event in self.events if isinstance(event, ApprovalRequested))


@pytest.fixture
async def call(store: SqlStore) -> GatedCall:
    user = UserIdentity(id=f"ada-{uuid4().hex}")
    await store.ensure_user(user)
    conversation = await store.create_conversation(user.id)
    return GatedCall(user.id, conversation.id, "call_1", DELETE.name, '{"path": "a.txt"}', DELETE)


@asynccontextmanager
async def two_replicas(approvals: ApprovalStore) -> AsyncGenerator[tuple[CallApprovals, CallApprovals]]:
    """Two replicas joined by a bus, whose waiting calls never look at the database by themselves."""
    hub = LocalHub()
    async with LocalBus(hub) as first_bus, LocalBus(hub) as second_bus:
        first, second = (
            CallApprovals(approvals, bus, FileServers(), Roles(frozenset()), timeout_seconds=60, recheck_seconds=3600)
            for bus in (first_bus, second_bus)
        )
        async with first, second:
            yield first, second


async def test_a_decision_on_another_replica_reaches_the_waiting_call_through_the_bus(
    approvals: ApprovalStore, call: GatedCall
) -> None:
    asked = Asked()
    outcome: list[str | None] = []

    with anyio.fail_after(WAIT_SECONDS):
        async with two_replicas(approvals) as (first, second), anyio.create_task_group() as group:

            async def admit() -> None:
                outcome.append(await first.admit(call, asked.emit))

            group.start_soon(admit)
            await asked.requested.wait()
            await second.decide(call.user_id, call.conversation_id, asked.approval_id, "once")

    assert outcome == [None]
    assert [event.decision for event in asked.events if isinstance(event, ApprovalEnded)] == ["once"]


async def test_a_decision_only_the_database_knows_of_reaches_the_waiting_call(
    approvals: ApprovalStore, call: GatedCall
) -> None:
    asked = Asked()
    outcome: list[str | None] = []
    async with LocalBus() as bus:
        gate = CallApprovals(
            approvals, bus, FileServers(), Roles(frozenset()), timeout_seconds=60, recheck_seconds=0.05
        )
        async with gate:

            async def admit() -> None:
                outcome.append(await gate.admit(call, asked.emit))

            with anyio.fail_after(WAIT_SECONDS):
                async with anyio.create_task_group() as group:
                    group.start_soon(admit)
                    await asked.requested.wait()
                    # As a replica that restarted, or one whose message was lost, would record it.
                    await approvals.decide(
                        call.user_id, call.conversation_id, asked.approval_id, "deny", datetime.now(UTC)
                    )

    assert outcome == [DENIED_BY_USER]


async def test_a_resumed_call_finds_its_decided_approval_without_asking_again(
    approvals: ApprovalStore, call: GatedCall
) -> None:
    asked, resumed = Asked(), Asked()

    with anyio.fail_after(WAIT_SECONDS):
        async with two_replicas(approvals) as (first, second):
            async with anyio.create_task_group() as group:
                group.start_soon(first.admit, call, asked.emit)
                await asked.requested.wait()
                await second.decide(call.user_id, call.conversation_id, asked.approval_id, "deny")
            outcome = await second.admit(call, resumed.emit)

    assert outcome == DENIED_BY_USER
    assert resumed.events == []
