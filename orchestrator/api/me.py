"""Who the caller is, as the orchestrator sees them: the frontend shows admin controls from this."""

from __future__ import annotations

from fastapi import APIRouter

from orchestrator.api.schemas import CallerOut, error_responses
from orchestrator.deps import CurrentCaller

router = APIRouter(prefix="/api", tags=["me"])


@router.get("/me", responses=error_responses(401))
async def who_am_i(caller: CurrentCaller) -> CallerOut:
    return CallerOut(id=caller.user.id, name=caller.user.name, email=caller.user.email, is_admin=caller.is_admin)
