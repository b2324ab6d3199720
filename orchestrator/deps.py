"""Typed request dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from orchestrator.auth import Caller
from orchestrator.errors import PermissionDenied
from orchestrator.lifespan import AppState


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.assistant
    return state


State = Annotated[AppState, Depends(get_state)]


async def get_caller(state: State, authorization: Annotated[str | None, Header()] = None) -> Caller:
    caller = state.auth.authenticate(authorization)
    if state.known_users.get(caller.user.id) != caller.user:
        await state.store.ensure_user(caller.user)
        state.known_users.remember(caller.user)
    return caller


CurrentCaller = Annotated[Caller, Depends(get_caller)]


async def get_admin(caller: CurrentCaller) -> Caller:
    if not caller.is_admin:
        raise PermissionDenied("only admins (ADMIN_USERS) may change the MCP servers")
    return caller


Admin = Annotated[Caller, Depends(get_admin)]
