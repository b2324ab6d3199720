"""The caller's long-term memories: list, search, save and delete (only ever their own)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from orchestrator.api.schemas import MemoryCreate, MemoryOut, error_responses
from orchestrator.deps import CurrentCaller, State
from orchestrator.errors import InvalidInput, MemoryDisabled
from orchestrator.lifespan import AppState
from orchestrator.memory.memories import Memories, Memory

router = APIRouter(prefix="/api/memories", tags=["memories"])

_errors = error_responses(401, 404, 422, 503)


def _memories(state: AppState) -> Memories:
    if state.memories is None:
        raise MemoryDisabled()
    return state.memories


def _out(memory: Memory) -> MemoryOut:
    return MemoryOut(
        id=memory.id,
        text=memory.text,
        source=memory.source,
        created_at=memory.created_at,
        conversation_id=memory.conversation_id,
        score=round(memory.score, 4) if memory.score is not None else None,
    )


@router.get("", responses=_errors)
async def list_memories(
    state: State,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        datetime | None, Query(description="continue a listing: the created_at of the last memory received")
    ] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=2_000, description="search: the memories closest in meaning")
    ] = None,
) -> list[MemoryOut]:
    """Newest first; with ``q``, the memories most similar to it, best first."""
    memories = _memories(state)
    if q is not None:
        found = await memories.search(caller.user.id, q, limit=limit)
    else:
        found = await memories.list(caller.user.id, limit=limit, before=before)
    return [_out(memory) for memory in found]


@router.post("", status_code=status.HTTP_201_CREATED, responses=_errors)
async def save_memory(state: State, caller: CurrentCaller, body: MemoryCreate) -> MemoryOut:
    """Save a memory the assistant may recall in later conversations (saving the same text again refreshes it)."""
    text = body.text.strip()
    if not text:
        raise InvalidInput("a memory needs some text")
    return _out(await _memories(state).save(caller.user.id, text, source="saved"))


@router.delete("/{memory_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors)
async def delete_memory(state: State, caller: CurrentCaller, memory_id: str) -> None:
    await _memories(state).delete(caller.user.id, memory_id)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, responses=_errors)
async def delete_all_memories(state: State, caller: CurrentCaller) -> None:
    """Forget everything the assistant remembers about the caller."""
    await _memories(state).forget_all(caller.user.id)
