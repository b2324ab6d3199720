"""Serving a turn over ``/v1``: OpenAI's server-sent events, and a client going away cancelling the turn."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from starlette.requests import Request

from orchestrator.api.streaming import ServerSentEvents, cancel_on_disconnect

DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class Comment:
    """An SSE comment line: clients ignore it; it keeps proxies from timing out and shows what the server does."""

    text: str


Chunk = dict[str, Any] | str | Comment
"""A JSON object to send as one event's data, ``DONE``, or a comment."""
ChunkProducer = Callable[[MemoryObjectSendStream[Chunk]], Awaitable[None]]
T = TypeVar("T")


def encode_chunk(chunk: Chunk) -> bytes:
    if isinstance(chunk, Comment):
        return f": {' '.join(chunk.text.split())}\n\n".encode()
    data = chunk if isinstance(chunk, str) else json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class ChunkStreamResponse(ServerSentEvents[Chunk]):
    """Streams what ``producer`` sends as ``data:`` events (OpenAI's streams have no event names or ids); a client
    that goes away cancels the producer (the turn)."""

    def __init__(self, producer: ChunkProducer) -> None:
        super().__init__(producer, encode_chunk)


async def until_disconnect(request: Request, work: Callable[[], Awaitable[T]]) -> T | None:
    """Run ``work`` unless the client goes away first (then it is cancelled and ``None`` returned)."""
    result: list[T] = []
    async with anyio.create_task_group() as group:

        async def run() -> None:
            result.append(await work())
            group.cancel_scope.cancel()

        group.start_soon(run)
        group.start_soon(cancel_on_disconnect, request.receive, group.cancel_scope)
    return result[0] if result else None
