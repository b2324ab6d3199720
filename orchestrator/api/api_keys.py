"""The caller's API keys, for the OpenAI-compatible ``/v1`` API and the ``/mcp`` endpoint: create, list, revoke.

The secret of a new key is in the creation's answer only; the orchestrator keeps its hash. Keys are made and
revoked with the user's own sign-in: a key cannot make more keys, so a leaked key can be revoked for good.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field

from orchestrator.api.schemas import CleanText, Strict, error_responses
from orchestrator.apikeys.keys import ApiKeyRecord
from orchestrator.auth import Caller
from orchestrator.deps import CurrentCaller, State
from orchestrator.errors import ApiKeyNotFound, PermissionDenied

router = APIRouter(prefix="/api/api-keys", tags=["api keys"])

_errors = error_responses(401, 403, 404, 409, 422)


class ApiKeyCreate(Strict):
    name: Annotated[CleanText, Field(min_length=1, max_length=100, description="what the key is for")]


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the secret: shown this once, never again")


def _out(record: ApiKeyRecord) -> ApiKeyOut:
    return ApiKeyOut(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        created_at=record.created_at,
        last_used_at=record.last_used_at,
    )


async def signed_in(caller: CurrentCaller) -> Caller:
    if caller.api_key_id is not None:
        raise PermissionDenied("API keys are managed with your own sign-in, not with an API key")
    return caller


SignedIn = Annotated[Caller, Depends(signed_in)]


async def key_id(key_id: str) -> str:
    """Any id that is not one of ours is simply not found."""
    try:
        return str(uuid.UUID(key_id))
    except ValueError:
        raise ApiKeyNotFound(key_id[:100]) from None


@router.post("", status_code=status.HTTP_201_CREATED, responses=_errors)
async def create_api_key(state: State, caller: SignedIn, body: ApiKeyCreate) -> ApiKeyCreated:
    """Make a key; its secret (``key``) is in this answer and nowhere else."""
    created = await state.api_keys.create(caller.user.id, body.name.strip() or body.name)
    return ApiKeyCreated(**_out(created.record).model_dump(), key=created.secret)


@router.get("", responses=_errors)
async def list_api_keys(state: State, caller: SignedIn) -> list[ApiKeyOut]:
    """The caller's active keys, newest first, without their secrets."""
    return [_out(record) for record in await state.api_keys.list(caller.user.id)]


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors)
async def revoke_api_key(state: State, caller: SignedIn, key_id: Annotated[str, Depends(key_id)]) -> None:
    """Revoke a key: requests presenting it are refused from now on."""
    await state.api_keys.revoke(caller.user.id, key_id)
