"""MCP servers and their tools; admins add and remove HTTP servers at run time."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, status

from orchestrator.api.schemas import ServerCreate, ServerOut, ToolOut, error_responses
from orchestrator.deps import Admin, CurrentCaller, State
from orchestrator.errors import Conflict
from orchestrator.mcp.sources import from_registration, with_service_token
from orchestrator.mcp.types import SERVER_ID_PATTERN, ServerInfo
from orchestrator.memory.types import ServerRegistration

router = APIRouter(prefix="/api", tags=["servers"])
logger = logging.getLogger(__name__)

_errors = error_responses(401, 403, 404, 409)


def _server_out(info: ServerInfo) -> ServerOut:
    return ServerOut(
        id=info.id,
        transport=info.transport,
        source=info.source,
        status=info.status,
        tool_count=info.tool_count,
        last_error=info.last_error,
        connected_at=info.connected_at,
        url=info.url,
        failed_attempts=info.failed_attempts,
        sign_in_required=info.sign_in_required,
        signed_in=info.signed_in,
    )


@router.get("/servers", responses=_errors)
async def list_servers(state: State, caller: CurrentCaller) -> list[ServerOut]:
    """Every server; those each user signs in to (``sign_in_required``) as the caller sees them."""
    return [_server_out(info) for info in await state.registry.servers_for(caller.user.id)]


@router.get("/tools", responses=_errors)
async def list_tools(state: State, caller: CurrentCaller) -> list[ToolOut]:
    """The tools the model is offered in the caller's conversations, and what the caller's calls of each do."""
    specs = await state.registry.tools_for(caller.user.id)
    policies = await state.approvals.policies(caller.user.id, specs) if state.approvals is not None else {}
    return [
        ToolOut(
            name=spec.name,
            server_id=spec.server_id,
            tool=spec.tool,
            description=spec.description,
            input_schema=dict(spec.input_schema),
            annotations=dict(spec.annotations) if spec.annotations is not None else None,
            policy=policies[spec.name].policy if spec.name in policies else None,
        )
        for spec in specs
    ]


@router.post("/servers", status_code=status.HTTP_201_CREATED, responses=_errors)
async def add_server(body: ServerCreate, state: State, admin: Admin) -> ServerOut:
    """Register an HTTP MCP server; it is kept in the database and connected in the background."""
    if any(server.id == body.id for server in state.registry.servers()):
        raise Conflict(f"a server with id {body.id!r} already exists")
    registration = await state.store.add_registration(
        ServerRegistration(
            id=body.id,
            transport=body.transport,
            url=body.url,
            headers=body.headers,
            tool_timeout_seconds=body.tool_timeout_seconds,
            created_by=admin.user.id,
            send_user_id=body.send_user_id,
            use_service_token=body.use_service_token,
            max_concurrent_calls=body.max_concurrent_calls,
        )
    )
    token = state.settings.mcp_service_token
    config = with_service_token(
        from_registration(registration, state.settings), token.get_secret_value() if token else None
    )
    try:
        info = await state.registry.add(config)
    except Conflict:
        await state.store.remove_registration(body.id)
        raise
    state.server_sync.announce("registrations", body.id)
    logger.info("server %s added by %s", body.id, admin.user.id)
    return _server_out(info)


@router.delete("/servers/{server_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors)
async def remove_server(state: State, admin: Admin, server_id: Annotated[str, Path(pattern=SERVER_ID_PATTERN)]) -> None:
    """Remove a server registered at run time (servers from MCP_CONFIG are changed in that file)."""
    info = state.registry.server(server_id)
    if info.source != "runtime":
        raise Conflict(f"server {server_id!r} comes from the {info.source} settings; change it there")
    await state.registry.remove(server_id)
    await state.store.remove_registration(server_id)
    state.server_sync.announce("registrations", server_id)
    logger.info("server %s removed by %s", server_id, admin.user.id)
