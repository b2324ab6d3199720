"""Server-sent-event responses whose producer lives exactly as long as the client is listening.

``ServerSentEvents`` streams any items with a given encoder (the ``/v1`` API's chunks use it too). A turn's
producer sends ``(id, event)`` pairs to ``EventStreamResponse``; the id becomes the event's ``id:`` field, which a
client that reconnects sends back as ``Last-Event-ID`` (see ``orchestrator.loop.event_log``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from orchestrator.loop.events import TurnEvent, event_payload
from orchestrator.telemetry.metrics import ACTIVE_STREAMS

Item = TypeVar("Item")
SentEvent = tuple[str, TurnEvent]
Producer = Callable[[MemoryObjectSendStream[SentEvent]], Awaitable[None]]

KEEPALIVE_SECONDS = 15.0
KEEPALIVE = b": keepalive\n\n"


def encode_event(event_id: str, event: TurnEvent) -> bytes:
    data = json.dumps(event_payload(event), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event_id}\nevent: {event.event}\ndata: {data}\n\n".encode()


class ServerSentEvents(Response, Generic[Item]):
    """Runs ``producer`` and streams what it sends, each item as ``encode`` writes it; a client that goes away
    cancels the producer.

    The producer and the writer share one task group, so nothing outlives the request, and a keep-alive comment
    goes out whenever nothing else has for ``KEEPALIVE_SECONDS`` (long tool calls behind proxies).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        producer: Callable[[MemoryObjectSendStream[Item]], Awaitable[None]],
        encode: Callable[[Item], bytes],
        *,
        on_close: Callable[[], None] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        # Like Starlette's StreamingResponse: no body attribute, so no Content-Length header.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})})
        self._producer = producer
        self._encode = encode
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
        sender, items = anyio.create_memory_object_stream[Item](math.inf)
        async with anyio.create_task_group() as group:

            async def produce() -> None:
                async with sender:
                    await self._producer(sender)

            group.start_soon(produce)
            group.start_soon(cancel_on_disconnect, receive, group.cancel_scope)
            async with items:
                while True:
                    body = KEEPALIVE
                    with anyio.move_on_after(KEEPALIVE_SECONDS):
                        try:
                            body = self._encode(await items.receive())
                        except anyio.EndOfStream:
                            break
                    await send({"type": "http.response.body", "body": body, "more_body": True})
            group.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class EventStreamResponse(ServerSentEvents[SentEvent]):
    """A turn's events, each with its id and event name."""

    def __init__(
        self, producer: Producer, *, on_close: Callable[[], None] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(producer, _encode_sent, on_close=on_close, headers=headers)


def _encode_sent(sent: SentEvent) -> bytes:
    return encode_event(*sent)


async def cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` when the client goes away."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
