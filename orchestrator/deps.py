"""Typed request dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from orchestrator.apikeys.keys import is_api_key
from orchestrator.auth import Caller
from orchestrator.errors import PermissionDenied
from orchestrator.lifespan import AppState


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.assistant
    return state


State = Annotated[AppState, Depends(get_state)]


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate(state: AppState, authorization: str | None) -> Caller:
    """The caller of a request: an API key's user, or whoever the user's own sign-in (or development) says.

    Raises:
        AuthenticationFailed: the credentials are missing (outside development) or not valid.
    """
    token = bearer_token(authorization)
    if token is not None and is_api_key(token):
        return await state.api_keys.authenticate(token)
    return state.auth.authenticate(authorization)


async def get_caller(state: State, authorization: Annotated[str | None, Header()] = None) -> Caller:
    caller = await authenticate(state, authorization)
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
