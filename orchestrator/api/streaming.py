"""A server-sent-event response whose producer lives exactly as long as the client is listening.

The producer sends ``(id, event)`` pairs; the id becomes the event's ``id:`` field, which a client that reconnects
sends back as ``Last-Event-ID`` (see ``orchestrator.loop.event_log``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from orchestrator.loop.events import TurnEvent, event_payload
from orchestrator.telemetry.metrics import ACTIVE_STREAMS

SentEvent = tuple[str, TurnEvent]
Producer = Callable[[MemoryObjectSendStream[SentEvent]], Awaitable[None]]

KEEPALIVE_SECONDS = 15.0


def encode_event(event_id: str, event: TurnEvent) -> bytes:
    data = json.dumps(event_payload(event), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event_id}\nevent: {event.event}\ndata: {data}\n\n".encode()


class EventStreamResponse(Response):
    """Runs ``producer`` and streams what it sends; a client that goes away cancels the producer.

    The producer and the writer share one task group, so nothing outlives the request, and a keep-alive comment
    goes out whenever nothing else has for ``KEEPALIVE_SECONDS`` (long tool calls behind proxies).
    """

    media_type = "text/event-stream"

    def __init__(
        self, producer: Producer, *, on_close: Callable[[], None] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        # Like Starlette's StreamingResponse: no body attribute, so no Content-Length header.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})})
        self._producer = producer
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ACTIVE_STREAMS.inc()
        try:
            await self._stream(receive, send)
        finally:
            ACTIVE_STREAMS.dec()
            # Runs even when the client is gone before the first byte, so nothing the producer owns leaks.
            if self._on_close is not None:
                self._on_close()

    async def _stream(self, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        sender, events = anyio.create_memory_object_stream[SentEvent](math.inf)
        async with anyio.create_task_group() as group:

            async def produce() -> None:
                async with sender:
                    await self._producer(sender)

            async def watch_disconnect() -> None:
                while True:
                    message: dict[str, Any] = dict(await receive())
                    if message["type"] == "http.disconnect":
                        group.cancel_scope.cancel()
                        return

            group.start_soon(produce)
            group.start_soon(watch_disconnect)
            async with events:
                while True:
                    sent: SentEvent | None = None
                    with anyio.move_on_after(KEEPALIVE_SECONDS):
                        try:
                            sent = await events.receive()
                        except anyio.EndOfStream:
                            break
                    if sent is None:
                        await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
                        continue
                    body = encode_event(*sent)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
            group.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
