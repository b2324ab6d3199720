"""Tool definitions that changed since they were approved: admins review the difference and approve the change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from orchestrator.api.schemas import (
    ApprovedDefinitionOut,
    CurrentDefinitionOut,
    ToolApprovalOut,
    ToolChangeApprove,
    ToolChangeOut,
    error_responses,
)
from orchestrator.deps import Admin, State
from orchestrator.mcp.pinning import WithheldTool, definition_diff
from orchestrator.mcp.types import SERVER_ID_PATTERN

router = APIRouter(prefix="/api", tags=["tool approvals"])

_errors = error_responses(401, 403, 404, 409)


def _change_out(change: WithheldTool) -> ToolChangeOut:
    approved = change.approved
    return ToolChangeOut(
        server_id=change.server_id,
        tool=change.tool,
        name=change.name,
        approved=ApprovedDefinitionOut(
            definition_hash=approved.definition_hash,
            definition=dict(approved.definition),
            approved_by=approved.approved_by,
            approved_at=approved.approved_at,
        ),
        current=CurrentDefinitionOut(definition_hash=change.current_hash, definition=dict(change.current)),
        diff=definition_diff(approved.definition, change.current),
    )


@router.get("/tool-changes", responses=_errors)
async def list_tool_changes(state: State, _admin: Admin) -> list[ToolChangeOut]:
    """Tools withheld from the model because their server changed their definition since it was approved."""
    return [_change_out(change) for change in state.registry.withheld()]


# ``{tool:path}``: a server's own tool name may contain a slash.
@router.post("/tool-changes/{server_id}/{tool:path}/approve", responses=_errors)
async def approve_tool_change(
    state: State,
    admin: Admin,
    server_id: Annotated[str, Path(pattern=SERVER_ID_PATTERN)],
    tool: str,
    body: ToolChangeApprove | None = None,
) -> ToolApprovalOut:
    """Approve the tool's current definition, which is offered to the model again at once.

    With ``definition_hash`` (the one the admin reviewed), a tool that changed again since is refused with 409.
    """
    approval = await state.registry.approve_tool(
        server_id, tool, by=admin.user.id, seen_hash=body.definition_hash if body is not None else None
    )
    state.server_sync.announce("approvals", server_id)
    return ToolApprovalOut(
        server_id=approval.server_id,
        tool=approval.tool,
        definition_hash=approval.definition_hash,
        approved_by=approval.approved_by,
        approved_at=approval.approved_at,
    )
