"""A fast, scripted, OpenAI-compatible HTTP server for tests and benchmarks.

``FakeOpenAI`` is a raw ASGI app that answers ``POST /v1/chat/completions`` (streamed exactly as OpenAI streams, or
not), ``GET /v1/models`` and ``POST /v1/embeddings``. Replies come from a FIFO script (``fake.script(...)``) and, when
that is empty, from a fallback responder. Every chat request body is recorded in ``fake.requests``. Requests without
``Authorization: Bearer <fake.api_key>`` get 401, so a client pointed here by mistake cannot pass for the real API.

In tests::

    with FakeOpenAIServer(FakeOpenAI()) as server:
        server.fake.script(tool_calls([("notes__add", {"text": "hi"})]), text("Added."))
        model = OpenAIChatModel(api_key=server.api_key, base_url=server.base_url, ...)

In its own process (benchmarks)::

    python -m tests.fakes.openai_server --port 0 --responder tool_then_answer --tool notes__add --arguments '{}'

prints ``fake OpenAI listening on http://127.0.0.1:<port>/v1`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextvars
import hashlib
import itertools
import json
import logging
import math
import re
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from tests.fakes.background_server import BackgroundServer
from tests.fakes.openai_script import (
    CutReply,
    ErrorReply,
    HangReply,
    Reply,
    Responder,
    StreamRenderer,
    TextReply,
    ToolCallsReply,
    cut,
    echo,
    error,
    error_body,
    hang,
    is_json_array,
    is_json_object,
    prompt_tokens,
    text,
    tool_calls,
    tool_then_answer,
    validate_chat_request,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_MODEL",
    "FakeOpenAI",
    "FakeOpenAIServer",
    "Reply",
    "Responder",
    "cut",
    "echo",
    "error",
    "hang",
    "text",
    "tool_calls",
    "tool_then_answer",
]

DEFAULT_API_KEY = "sk-fake-openai-key-for-tests"
DEFAULT_MODEL = "fake-gpt"

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]

# Set while a request deliberately leaves its response unfinished, so uvicorn's complaint about exactly that is not
# logged. The ASGI app runs inside uvicorn's per-request task, so the flag is visible when uvicorn logs.
_breaking_connection: contextvars.ContextVar[bool] = contextvars.ContextVar("fake_openai_cut", default=False)


def _not_a_deliberate_cut(_record: logging.LogRecord) -> bool:
    return not _breaking_connection.get()


class FakeOpenAI:
    """The scripted behaviour and the ASGI app of the fake server.

    Thread-safe for the pattern "the server thread answers, the test thread scripts and inspects".
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        model: str = DEFAULT_MODEL,
        responder: Responder = echo,
        validate: bool = True,
    ) -> None:
        """Args:
        api_key: the only key accepted in ``Authorization: Bearer ...``.
        model: listed by ``GET /v1/models``.
        responder: answers when the script is empty.
        validate: answer 400 to requests OpenAI would refuse (unanswered tool calls, bad tool names...).
        """
        self.api_key = api_key
        self.model = model
        self.responder = responder
        self.validate = validate
        self.requests: list[dict[str, Any]] = []
        """Every chat completion request body received (with a valid key), oldest first."""
        self.embedding_requests: list[dict[str, Any]] = []
        self.rejected_keys = 0
        """How many requests were refused for a missing or wrong API key."""
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._expected_auth = f"Bearer {api_key}".encode()
        self._ids = itertools.count(1)

    # --- scripting -------------------------------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies; each chat request takes the next one, then the responder takes over."""
        with self._lock:
            self._script.extend(replies)

    def reset(self, responder: Responder | None = None) -> None:
        """Forget the script and the recorded requests; optionally swap the fallback responder."""
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.embedding_requests.clear()
            self.rejected_keys = 0
            if responder is not None:
                self.responder = responder

    @property
    def unused_replies(self) -> int:
        with self._lock:
            return len(self._script)

    def _next_reply(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return self.responder(request)

    # --- ASGI ------------------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers: Iterable[tuple[bytes, bytes]] = scope["headers"]
        if not any(name == b"authorization" and value == self._expected_auth for name, value in headers):
            self.rejected_keys += 1
            body = error_body(401, "Incorrect API key provided.", "invalid_api_key")
            await _send_json(send, 401, body)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        if method == "POST" and path == "/v1/chat/completions":
            await self._chat_completions(receive, send)
        elif method == "GET" and path == "/v1/models":
            model = {"id": self.model, "object": "model", "created": 0, "owned_by": "fake-openai"}
            await _send_json(send, 200, {"object": "list", "data": [model]})
        elif method == "POST" and path == "/v1/embeddings":
            await self._embeddings(receive, send)
        else:
            await _send_json(send, 404, error_body(404, f"Unknown request URL: {method} {path}", "unknown_url"))

    async def _chat_completions(self, receive: Receive, send: Send) -> None:
        request = await _read_json(receive, send)
        if request is None:
            return
        self.requests.append(request)
        if self.validate and (problem := validate_chat_request(request)):
            await _send_json(send, 400, error_body(400, problem))
            return
        options = request.get("stream_options")
        renderer = StreamRenderer(
            completion_id=f"chatcmpl-fake{next(self._ids)}",
            model=str(request.get("model")),
            created=int(time.time()),
            include_usage=is_json_object(options) and options.get("include_usage") is True,
            prompt_tokens=prompt_tokens(request),
        )
        await self._answer(self._next_reply(request), request, renderer, receive, send)

    async def _answer(
        self, reply: Reply, request: dict[str, Any], renderer: StreamRenderer, receive: Receive, send: Send
    ) -> None:
        streaming = request.get("stream") is True
        match reply:
            case ErrorReply():
                headers: list[tuple[bytes, bytes]] = []
                if reply.retry_after is not None:
                    headers.append((b"retry-after", f"{reply.retry_after:g}".encode()))
                if reply.retry_after_ms is not None:
                    headers.append((b"retry-after-ms", str(reply.retry_after_ms).encode()))
                await _send_json(send, reply.status, reply.body or error_body(reply.status), headers)
            case HangReply(after_chunks=after_chunks) if streaming and after_chunks > 0:
                then = reply.then or _streamable(self.responder(request))
                events = renderer.events(then)
                await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
                await send({"type": "http.response.body", "body": b"".join(events[:after_chunks]), "more_body": True})
                if not await _client_left_within(receive, reply.seconds):
                    await send({"type": "http.response.body", "body": b"".join(events[after_chunks:])})
            case HangReply():
                if not await _client_left_within(receive, reply.seconds):
                    then = reply.then or self.responder(request)
                    await self._answer(then, request, renderer, receive, send)
            case CutReply():
                if streaming:
                    events = renderer.events(reply.reply)[: reply.after_chunks]
                    await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
                    await send({"type": "http.response.body", "body": b"".join(events), "more_body": reply.abrupt})
                else:
                    payload = json.dumps(renderer.completion(reply.reply)).encode()
                    length = (b"content-length", str(len(payload)).encode())
                    await send({"type": "http.response.start", "status": 200, "headers": [*_JSON_HEADERS, length]})
                    await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
                if reply.abrupt or not streaming:
                    _breaking_connection.set(True)  # returning now makes uvicorn drop the connection mid-body
            case TextReply() | ToolCallsReply():
                if streaming:
                    await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
                    await send({"type": "http.response.body", "body": b"".join(renderer.events(reply))})
                else:
                    await _send_json(send, 200, renderer.completion(reply))

    async def _embeddings(self, receive: Receive, send: Send) -> None:
        request = await _read_json(receive, send)
        if request is None:
            return
        self.embedding_requests.append(request)
        raw_input = request.get("input")
        inputs = raw_input if is_json_array(raw_input) else [raw_input]
        dimensions = request.get("dimensions")
        size = dimensions if isinstance(dimensions, int) and dimensions > 0 else 64
        as_base64 = request.get("encoding_format") == "base64"
        data: list[dict[str, Any]] = []
        for index, item in enumerate(inputs):
            vector = embed(str(item), size)
            encoded: Any = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(str(item)) for item in inputs) // 4
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        await _send_json(send, 200, {"object": "list", "data": data, "model": request.get("model"), "usage": usage})


def embed(text: str, dimensions: int = 64) -> list[float]:
    """A deterministic bag-of-words embedding: texts that share words point in similar directions."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % dimensions
        vector[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else [1.0 / math.sqrt(dimensions)] * dimensions


def _streamable(reply: Reply) -> TextReply | ToolCallsReply:
    if isinstance(reply, TextReply | ToolCallsReply):
        return reply
    raise TypeError(f"a stalled stream needs a text or tool-call reply to resume with, not {type(reply).__name__}")


async def _read_json(receive: Receive, send: Send) -> dict[str, Any] | None:
    """The request body as a JSON object, or ``None`` after answering 400 (or if the client left)."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    try:
        body = json.loads(b"".join(parts))
    except ValueError:
        body = None
    if not is_json_object(body):
        await _send_json(send, 400, error_body(400, "We could not parse the JSON body of your request."))
        return None
    return body


async def _send_json(send: Send, status: int, body: Any, extra_headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _client_left_within(receive: Receive, seconds: float) -> bool:
    """Wait up to ``seconds``; ``True`` as soon as the client disconnects."""
    try:
        async with asyncio.timeout(seconds):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return False
    return True


# --- serving -------------------------------------------------------------------------------------------------------


class FakeOpenAIServer(BackgroundServer):
    """Serves a ``FakeOpenAI`` with uvicorn on a background thread; a context manager.

    Attributes (once entered):
        base_url: ``http://127.0.0.1:<port>/v1``, what OpenAI clients take as their base URL.
    """

    thread_name = "fake-openai"

    def __init__(self, fake: FakeOpenAI | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        # A deep backlog, and idle pooled connections that stay usable between benchmark phases.
        super().__init__(host=host, port=port, backlog=1024, timeout_keep_alive=300)
        self.fake = fake if fake is not None else FakeOpenAI()

    def app(self) -> ASGIApp:
        logger = logging.getLogger("uvicorn.error")
        if _not_a_deliberate_cut not in logger.filters:
            logger.addFilter(_not_a_deliberate_cut)
        return self.fake

    @property
    def api_key(self) -> str:
        return self.fake.api_key

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.openai_server", description="Run the fake OpenAI-compatible server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--responder", choices=["echo", "tool_then_answer"], default="echo")
    parser.add_argument("--tool", help="the tool name tool_then_answer calls")
    parser.add_argument("--arguments", default="{}", help="the JSON arguments tool_then_answer passes")
    args = parser.parse_args(argv)

    responder: Responder = echo
    if args.responder == "tool_then_answer":
        if not args.tool:
            parser.error("--responder tool_then_answer needs --tool")
        json.loads(args.arguments)  # fail now, not on the first request
        responder = tool_then_answer(args.tool, args.arguments)

    fake = FakeOpenAI(api_key=args.api_key, model=args.model, responder=responder)
    server = FakeOpenAIServer(fake, host=args.host, port=args.port)
    server.run(lambda: print(f"fake OpenAI listening on {server.base_url}", flush=True))


if __name__ == "__main__":
    main()
