"""Pinned tool definitions: a tool a server changes after it was approved is withheld until an admin approves again.

A tool's definition is its name (the server's own), description, input schema and annotations; its hash is the
SHA-256 of their canonical JSON. The first time a tool is seen its definition is trusted and recorded as approved
by ``"first-use"``: a fresh install has no approvals yet, and asking an admin to approve every tool of every server
before the assistant can do anything would leave it without tools (and admins approving without reading). What
this guards against is a tool that changes behind the users' back: a server that rewrites a description the model
trusts (a "rug pull"). Such a tool is withheld from the model, and calling it is refused, until an admin has seen
the difference and approved the new definition.

``MCP_TOOL_APPROVAL=off`` turns pinning off altogether (the registry then gets no :class:`ToolApprovals`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import anyio
from anyio.abc import TaskStatus

from orchestrator.mcp.types import ToolSpec
from orchestrator.memory.types import ToolApproval, ToolApprovalStore

logger = logging.getLogger(__name__)

FIRST_USE: Final = "first-use"
"""``approved_by`` of a definition trusted the first time its tool was seen."""

_FLUSH_SECONDS: Final = 5.0
"""How long closing waits to record first uses not yet written."""


def tool_definition(spec: ToolSpec) -> dict[str, Any]:
    """What is pinned of a tool, as plain JSON values: name, description, input schema and annotations.

    ``spec`` is the tool as its server listed it, before invisible characters are taken out of its description: a
    change in hidden characters alone is a change.
    """
    definition = {
        "name": spec.tool,
        "description": spec.description,
        "input_schema": spec.input_schema,
        "annotations": spec.annotations,
    }
    parsed: dict[str, Any] = json.loads(canonical_json(definition))
    return parsed


def canonical_json(definition: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, ASCII only (anything else escaped): equal definitions give equal text."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def definition_hash(definition: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(definition).encode("ascii")).hexdigest()


def definition_diff(approved: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """A unified diff of the two definitions as indented JSON.

    Non-ASCII characters are escaped (``\\u200b``), so invisible ones show in the diff.
    """
    return "".join(
        difflib.unified_diff(
            _pretty(approved).splitlines(keepends=True),
            _pretty(current).splitlines(keepends=True),
            fromfile="approved",
            tofile="current",
        )
    )


def _pretty(definition: Mapping[str, Any]) -> str:
    return json.dumps(definition, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


@dataclass(frozen=True, slots=True)
class WithheldTool:
    """A tool whose definition differs from the approved one: kept from the model until an admin approves it."""

    name: str  # the exposed name
    server_id: str
    tool: str  # the server's own name
    approved: ToolApproval
    current: Mapping[str, Any]
    current_hash: str


class ToolApprovals:
    """The approved definitions, cached in memory, and the policy that compares tools against them.

    :meth:`review` runs synchronously whenever a server's tools change, so it answers from the cache;
    :meth:`run` loads the cache first and then writes first-use approvals in the background.

    Args:
        store: where approvals are kept.
        clock: the source of ``approved_at``.
    """

    def __init__(self, store: ToolApprovalStore, *, clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._clock = clock or (lambda: datetime.now(UTC))
        self._approved: dict[tuple[str, str], ToolApproval] = {}
        self._unrecorded: dict[tuple[str, str], ToolApproval] = {}
        self._definitions: dict[tuple[str, str], tuple[ToolSpec, dict[str, Any], str]] = {}
        self._warned: set[tuple[str, str, str]] = set()
        self._record_wanted: anyio.Event | None = None
        self._stopping = False

    async def run(
        self, on_change: Callable[[], None], *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Load the approvals, report started, then record first-use approvals until :meth:`stop`.

        Args:
            on_change: called when a recorded approval turns out to differ from the one assumed (another one was
                stored first), so the caller reviews its tools again.
        """
        self._record_wanted = anyio.Event()
        for approval in await self._store.list_tool_approvals():
            self._approved[(approval.server_id, approval.tool)] = approval
            self._unrecorded.pop((approval.server_id, approval.tool), None)  # a stored approval beats a first use
        if self._unrecorded:
            self._record_wanted.set()
        task_status.started()
        try:
            while not self._stopping:
                await self._record_wanted.wait()
                self._record_wanted = anyio.Event()
                if await self._record_first_uses():
                    on_change()
        finally:
            # First uses seen just before closing are written before it closes, within a bound.
            with anyio.move_on_after(_FLUSH_SECONDS, shield=True):
                await self._record_first_uses()

    async def reload(self) -> None:
        """Read the stored approvals again: another replica approved a changed definition."""
        for approval in await self._store.list_tool_approvals():
            key = (approval.server_id, approval.tool)
            if key not in self._unrecorded:
                self._approved[key] = approval

    def stop(self) -> None:
        """Ask :meth:`run` to write what is left and return."""
        self._stopping = True
        if self._record_wanted is not None:
            self._record_wanted.set()

    def review(self, spec: ToolSpec) -> WithheldTool | None:
        """``None`` when ``spec`` (as its server listed it) may be offered; else why it is withheld.

        A tool seen for the first time is approved on the spot (by ``"first-use"``) and recorded in the background.
        """
        key = (spec.server_id, spec.tool)
        definition, digest = self._definition(spec)
        approval = self._approved.get(key)
        if approval is None:
            approval = ToolApproval(spec.server_id, spec.tool, digest, definition, FIRST_USE, self._clock())
            self._approved[key] = self._unrecorded[key] = approval
            if self._record_wanted is not None:
                self._record_wanted.set()
            return None
        if approval.definition_hash == digest:
            return None
        if (*key, digest) not in self._warned:
            self._warned.add((*key, digest))
            logger.warning(
                "MCP server %s changed the definition of tool %s since it was approved; it is withheld from the "
                "model until an admin approves the change",
                spec.server_id,
                spec.tool,
            )
        return WithheldTool(spec.name, spec.server_id, spec.tool, approval, definition, digest)

    async def approve(self, withheld: WithheldTool, *, by: str) -> ToolApproval:
        """Approve ``withheld.current`` (and nothing else: a later change is withheld again).

        Raises whatever the store raises.
        """
        approval = ToolApproval(
            withheld.server_id, withheld.tool, withheld.current_hash, withheld.current, by, self._clock()
        )
        await self._store.set_tool_approval(approval)
        key = (withheld.server_id, withheld.tool)
        self._approved[key] = approval
        self._unrecorded.pop(key, None)
        logger.info(
            "tool %s of MCP server %s: definition %s approved by %s",
            withheld.tool,
            withheld.server_id,
            withheld.current_hash[:12],
            by,
        )
        return approval

    def _definition(self, spec: ToolSpec) -> tuple[dict[str, Any], str]:
        """The definition and its hash, computed again only when the server listed something different."""
        key = (spec.server_id, spec.tool)
        cached = self._definitions.get(key)
        if cached is None or cached[0] != spec:
            definition = tool_definition(spec)
            cached = self._definitions[key] = (spec, definition, definition_hash(definition))
        return cached[1], cached[2]

    async def _record_first_uses(self) -> bool:
        """Write the pending first-use approvals; returns whether one stored earlier replaced ours in the cache."""
        replaced = False
        while self._unrecorded:
            key, approval = next(iter(self._unrecorded.items()))
            try:
                stored = await self._store.add_tool_approval(approval)
            except Exception:  # boundary: a database hiccup must not take the MCP registry down with it
                logger.exception(
                    "could not record the first use of tool %s of MCP server %s; it is trusted until restart",
                    approval.tool,
                    approval.server_id,
                )
                stored = approval
            if self._unrecorded.get(key) is approval:
                del self._unrecorded[key]
            if self._approved.get(key) is approval:
                self._approved[key] = stored
                replaced = replaced or stored.definition_hash != approval.definition_hash
        return replaced
