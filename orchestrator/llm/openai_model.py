"""``ChatModel`` over any OpenAI-compatible Chat Completions endpoint, streamed.

The SDK's client does the HTTP (auth, base URL, status errors); this module reads the server-sent events itself. The
SDK would build a pydantic model per chunk, which costs ~30x more than ``json.loads`` on the hot path of every turn.

Retries are ours, not the SDK's, because they must stop at the first event handed to the caller: nothing is ever
shown twice. A loop expresses that directly inside the async generator; tenacity's attempt context cannot wrap a
``yield`` safely (it would swallow ``GeneratorExit``), so it would force splitting every stream in two.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, Final, Literal, TypedDict

import anyio
import httpx2
import openai

from orchestrator.errors import ModelRequestRejected, ModelStreamInterrupted, ModelUnavailable
from orchestrator.llm.tools import ToolDefinitions, encode_json
from orchestrator.llm.types import (
    ChatMessage,
    ModelEvent,
    ModelToolCall,
    StepCompleted,
    TextDelta,
    ToolDefinition,
    Usage,
)
from orchestrator.text import safe_text

logger = logging.getLogger(__name__)

OPENAI_BASE_URL: Final = "https://api.openai.com/v1"
_INITIAL_BACKOFF_SECONDS: Final = 0.5
_RETRYABLE_STATUS: Final = frozenset({408, 409, 429})
_REASON_MAX_CHARS: Final = 300

FinishReason = Literal["stop", "tool_calls", "length", "content_filter", "other"]
_FINISH_REASONS: Final[Mapping[str, FinishReason]] = {
    "stop": "stop",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "length": "length",
    "content_filter": "content_filter",
}


# The slice of the chunk format we read (https://platform.openai.com/docs/api-reference/chat-streaming).
class _FunctionDelta(TypedDict, total=False):
    name: str | None
    arguments: str | None


class _ToolCallDelta(TypedDict, total=False):
    index: int | None
    id: str | None
    function: _FunctionDelta | None


class _Delta(TypedDict, total=False):
    content: str | None
    tool_calls: list[_ToolCallDelta] | None


class _Choice(TypedDict, total=False):
    delta: _Delta | None
    finish_reason: str | None


class _Usage(TypedDict, total=False):
    prompt_tokens: int | None
    completion_tokens: int | None


class _Chunk(TypedDict, total=False):
    choices: list[_Choice] | None
    usage: _Usage | None
    error: Any


class _Transient(Exception):
    """A failure worth retrying (rate limit, 5xx, network, timeout, a stream that broke before any output)."""

    def __init__(self, reason: str, *, status_code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.retry_after = retry_after


class _ToolCallParts:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []


class OpenAIChatModel:
    """A ``ChatModel`` that streams Chat Completions from OpenAI or any compatible endpoint.

    One instance holds one connection pool; create it once (in the lifespan) and ``aclose()`` it at shutdown.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        temperature: float | None,
        max_tokens: int | None,
        timeout_seconds: float = 60,
        max_retries: int = 3,
        retry_max_wait: float = 20,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Args:
        api_key: sent as a bearer token; never logged.
        base_url: the endpoint's ``.../v1`` URL; ``None`` means api.openai.com.
        model: the model name sent with every request.
        temperature: sampling temperature; ``None`` leaves the endpoint's default.
        max_tokens: default cap on completion tokens per step; ``None`` leaves the endpoint's default.
        timeout_seconds: limit on connecting and on each wait for data (not on the whole stream).
        max_retries: retries after the first attempt for rate limits, 5xx, network errors and timeouts.
        retry_max_wait: cap in seconds on any single wait between attempts, ``Retry-After`` included.
        sleep: how to wait between attempts (tests pass a recorder).
        """
        self._model = model
        self._max_retries = max(0, max_retries)
        self._retry_max_wait = max(0.0, retry_max_wait)
        self._sleep = sleep
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or OPENAI_BASE_URL,
            timeout=timeout_seconds,
            max_retries=0,
        )
        # api.openai.com refuses `max_tokens` for reasoning models; compatible servers widely know only `max_tokens`.
        self._max_tokens_field = "max_completion_tokens" if base_url in (None, "", OPENAI_BASE_URL) else "max_tokens"
        self._defaults: dict[str, Any] = {
            "model": model,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if temperature is not None:
            self._defaults["temperature"] = temperature
        self._default_max_tokens = max_tokens

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def configured(self) -> bool:
        return True

    async def aclose(self) -> None:
        await self._client.close()

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolDefinition],
        *,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[ModelEvent, None]:
        """Stream one step: ``TextDelta`` events as text arrives, then one ``StepCompleted``.

        Raises:
            ModelUnavailable: rate limits, 5xx, network errors or timeouts outlasted the retries.
            ModelRequestRejected: the endpoint refused the request (4xx other than 408, 409 and 429).
            ModelStreamInterrupted: the stream broke, or ended without a finish reason, after output had started.
        """
        fields = dict(self._defaults)
        fields["messages"] = messages
        limit = max_tokens if max_tokens is not None else self._default_max_tokens
        if limit is not None:
            fields[self._max_tokens_field] = limit
        body: Mapping[str, Any] | bytes = fields
        if isinstance(tools, ToolDefinitions) and tools:
            # The tools were encoded once, when the tool set changed: splice them in instead of encoding them again.
            body = encode_json(fields)[:-1] + b',"tools":' + tools.json() + b"}"
        elif tools:
            fields["tools"] = tools

        attempt = 0
        while True:
            attempt += 1
            started = False
            try:
                async with aclosing(self._attempt(body)) as events:
                    async for event in events:
                        started = True
                        yield event
                return
            except _Transient as exc:
                if started:
                    raise ModelStreamInterrupted(exc.reason) from exc
                if attempt > self._max_retries:
                    raise ModelUnavailable(exc.reason, status_code=exc.status_code, attempts=attempt) from exc
                if exc.retry_after is not None and exc.retry_after > self._retry_max_wait:
                    # Waiting less than asked would only spend the retries on more refusals.
                    reason = f"{exc.reason} (the endpoint asks to wait {exc.retry_after:g}s before retrying)"
                    raise ModelUnavailable(reason, status_code=exc.status_code, attempts=attempt) from exc
                wait = self._wait_before_retry(exc, attempt)
                logger.warning(
                    "model request failed; retrying",
                    extra={
                        "model": self._model,
                        "attempt": attempt,
                        "status_code": exc.status_code,
                        "reason": exc.reason,
                        "wait": wait,
                    },
                )
                await self._sleep(wait)

    def _wait_before_retry(self, failure: _Transient, attempt: int) -> float:
        if failure.retry_after is not None:
            return failure.retry_after
        backoff = _INITIAL_BACKOFF_SECONDS * 2 ** (attempt - 1) * (0.75 + random.random() / 4)
        return min(backoff, self._retry_max_wait)

    async def _attempt(self, body: Mapping[str, Any] | bytes) -> AsyncGenerator[ModelEvent]:
        """One request and its stream, with failures sorted into retryable (``_Transient``) or not."""
        try:
            stream = await self._client.post(
                "/chat/completions",
                body=None if isinstance(body, bytes) else body,
                content=body if isinstance(body, bytes) else None,
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
        except openai.APIStatusError as exc:
            status = exc.status_code
            reason = exc.message[:_REASON_MAX_CHARS]
            if status in _RETRYABLE_STATUS or status >= 500:
                raise _Transient(reason, status_code=status, retry_after=_retry_after(exc.response.headers)) from exc
            raise ModelRequestRejected(reason, status_code=status) from exc
        except openai.APITimeoutError as exc:
            raise _Transient("the model endpoint timed out") from exc
        except openai.APIConnectionError as exc:
            raise _Transient(f"could not reach the model endpoint: {exc.__cause__ or exc}"[:_REASON_MAX_CHARS]) from exc

        # The SDK's stream object only carries the response here; we parse the events ourselves (see the module doc).
        response = stream.response
        text_parts: list[str] = []
        calls: dict[int, _ToolCallParts] = {}
        finish_reason: str | None = None
        usage: _Usage | None = None
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, ": keep-alive" comments, "event:" lines
                data = line[5:].strip()
                if data == "[DONE]":
                    continue  # read on to the end so the connection can be reused
                chunk: _Chunk = json.loads(data)
                if "\\u" in data:  # escapes may carry NUL or lone surrogates, which nothing downstream can carry
                    chunk = _safe_chunk(chunk)
                if failure := chunk.get("error"):
                    raise _Transient(f"the endpoint reported an error mid-stream: {failure}"[:_REASON_MAX_CHARS])
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta")
                    if delta:
                        content = delta.get("content")
                        if content:
                            text_parts.append(content)
                            yield TextDelta(content)
                        for call_delta in delta.get("tool_calls") or ():
                            _merge_tool_call(calls, call_delta)
                    if choice.get("finish_reason"):
                        finish_reason = choice.get("finish_reason")
                if chunk.get("usage"):
                    usage = chunk.get("usage")
        except httpx2.TimeoutException as exc:
            raise _Transient("the model stream stalled past the timeout") from exc
        except (httpx2.RequestError, OSError, anyio.EndOfStream) as exc:
            raise _Transient(f"the model stream broke: {type(exc).__name__}") from exc
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise _Transient(f"the model stream carried malformed data: {type(exc).__name__}") from exc
        finally:
            await response.aclose()

        if finish_reason is None:
            raise _Transient("the model stream ended before the reply was complete")
        tool_calls = [
            ModelToolCall(
                id=parts.id or f"call_{uuid.uuid4().hex[:24]}", name=parts.name, arguments="".join(parts.arguments)
            )
            for _, parts in sorted(calls.items())
        ]
        mapped: FinishReason = _FINISH_REASONS.get(finish_reason, "other")
        if tool_calls and mapped == "stop":
            mapped = "tool_calls"  # some compatible servers report "stop" alongside tool calls
        yield StepCompleted(
            content="".join(text_parts),
            tool_calls=tool_calls,
            usage=Usage(
                prompt_tokens=(usage.get("prompt_tokens") or 0) if usage else 0,
                completion_tokens=(usage.get("completion_tokens") or 0) if usage else 0,
            ),
            finish_reason=mapped,
        )


def _merge_tool_call(calls: dict[int, _ToolCallParts], delta: _ToolCallDelta) -> None:
    index = delta.get("index")
    if index is None:  # servers that send whole calls, one per chunk, may leave the index out
        index = len(calls)
    parts = calls.get(index)
    if parts is None:
        parts = calls[index] = _ToolCallParts()
    call_id = delta.get("id")
    if call_id and not parts.id:
        parts.id = call_id
    function = delta.get("function")
    if function:
        name = function.get("name")
        if name and name != parts.name:  # OpenAI sends the name once; tolerate servers that repeat it
            parts.name += name
        arguments = function.get("arguments")
        if arguments:
            parts.arguments.append(arguments)


def _retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, or ``Retry-After`` in seconds or as a date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _safe_chunk(chunk: Any) -> Any:
    """The chunk with every string passed through ``safe_text`` (rare: only chunks with \\u escapes)."""
    if isinstance(chunk, str):
        return safe_text(chunk)
    if isinstance(chunk, list):
        return [_safe_chunk(item) for item in chunk]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(chunk, dict):
        return {key: _safe_chunk(value) for key, value in chunk.items()}  # pyright: ignore[reportUnknownVariableType]
    return chunk
