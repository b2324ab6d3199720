"""Serving a turn over ``/v1``: OpenAI's server-sent events, and a client going away cancelling the turn."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from orchestrator.telemetry.metrics import ACTIVE_STREAMS

KEEPALIVE_SECONDS = 15.0
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


class ChunkStreamResponse(Response):
    """Streams what ``producer`` sends as ``data:`` events (OpenAI's streams have no event names or ids).

    The producer and the writer share one task group: a client that goes away cancels the producer (the turn),
    and a keep-alive comment goes out whenever nothing else has for ``KEEPALIVE_SECONDS``.
    """

    media_type = "text/event-stream"

    def __init__(self, producer: ChunkProducer) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._producer = producer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ACTIVE_STREAMS.inc()
        try:
            await self._stream(receive, send)
        finally:
            ACTIVE_STREAMS.dec()

    async def _stream(self, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        sender, chunks = anyio.create_memory_object_stream[Chunk](math.inf)
        async with anyio.create_task_group() as group:

            async def produce() -> None:
                async with sender:
                    await self._producer(sender)

            group.start_soon(produce)
            group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
            async with chunks:
                while True:
                    chunk: Chunk | None = None
                    with anyio.move_on_after(KEEPALIVE_SECONDS):
                        try:
                            chunk = await chunks.receive()
                        except anyio.EndOfStream:
                            break
                    body = b": keepalive\n\n" if chunk is None else encode_chunk(chunk)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
            group.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def until_disconnect(request: Request, work: Callable[[], Awaitable[T]]) -> T | None:
    """Run ``work`` unless the client goes away first (then it is cancelled and ``None`` returned)."""
    result: list[T] = []
    async with anyio.create_task_group() as group:

        async def run() -> None:
            result.append(await work())
            group.cancel_scope.cancel()

        group.start_soon(run)
        group.start_soon(_cancel_on_disconnect, request.receive, group.cancel_scope)
    return result[0] if result else None


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
