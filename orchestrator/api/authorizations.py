"""Users' sign-ins to protected MCP servers (OAuth 2.1): start one, come back from one, disconnect.

A sign-in started here (the servers page's "Connect") or during a tool call ends at ``GET /api/oauth/callback``,
where the user's browser lands after the authorization server's pages. The callback answers with a redirect to the
UI's ``/oauth/complete`` page, which tells the user how it went.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import RedirectResponse

from orchestrator.api.schemas import AuthorizationStarted, error_responses
from orchestrator.deps import CurrentCaller, State
from orchestrator.errors import AuthorizationRequestNotFound, Conflict, ServerAuthorizationRequired
from orchestrator.mcp.oauth.inbox import Callback
from orchestrator.mcp.types import SERVER_ID_PATTERN

router = APIRouter(prefix="/api", tags=["servers"])
logger = logging.getLogger(__name__)

ServerId = Annotated[str, Path(pattern=SERVER_ID_PATTERN)]
_Text = Annotated[str | None, Query(max_length=4_000)]


@router.post(
    "/servers/{server_id}/authorization",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 404, 409, 502),
)
async def start_authorization(state: State, caller: CurrentCaller, server_id: ServerId) -> AuthorizationStarted:
    """Start signing the caller in to a protected server: open ``authorization_url`` in the browser."""
    if not state.registry.is_protected(server_id):
        raise Conflict(f"MCP server {server_id!r} does not ask its users to sign in")
    sign_ins = state.registry.sign_ins
    if sign_ins is None:
        raise ServerAuthorizationRequired(server_id, "this service keeps no sign-ins")
    pending = await sign_ins.begin(caller.user.id, state.registry.config(server_id))
    return AuthorizationStarted(server_id=server_id, authorization_url=pending.url)


@router.delete(
    "/servers/{server_id}/authorization",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404, 409),
)
async def disconnect(state: State, caller: CurrentCaller, server_id: ServerId) -> None:
    """Sign the caller out of a protected server: its tokens are revoked (where it allows) and deleted."""
    if not state.registry.is_protected(server_id):
        raise Conflict(f"MCP server {server_id!r} does not ask its users to sign in")
    sign_ins = state.registry.sign_ins
    if sign_ins is not None:
        await sign_ins.disconnect(caller.user.id, server_id)
    state.registry.close_user_connection(server_id, caller.user.id)
    logger.info("user %s disconnected from MCP server %s", caller.user.id, server_id)


@router.get("/oauth/callback", status_code=status.HTTP_303_SEE_OTHER, responses=error_responses(401))
async def oauth_callback(
    state: State,
    caller: CurrentCaller,
    state_: Annotated[str, Query(alias="state", min_length=1, max_length=1_000)],
    code: _Text = None,
    iss: _Text = None,
    error: _Text = None,
    error_description: _Text = None,
) -> RedirectResponse:
    """Where an MCP server's authorization server sends the user back; redirects to the UI's result page."""
    callback = Callback(state=state_, code=code, iss=iss, error=error, error_description=error_description)
    sign_ins = state.registry.sign_ins
    query: dict[str, str]
    try:
        if sign_ins is None:
            raise AuthorizationRequestNotFound("this sign-in")
        owner, outcome = await sign_ins.complete(caller.user.id, callback)
    except AuthorizationRequestNotFound:
        query = {"status": "expired"}
    else:
        query = {"server": owner.server_id, "status": outcome.status}
        if outcome.status == "connected":
            state.registry.close_user_connection(owner.server_id, caller.user.id)
    page = f"{state.settings.resolved_public_url}/oauth/complete?{urlencode(query)}"
    return RedirectResponse(page, status_code=status.HTTP_303_SEE_OTHER)
