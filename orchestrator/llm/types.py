"""The ChatModel protocol: what the loop needs from a language model."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

ChatMessage = Mapping[str, Any]
"""One message in OpenAI Chat Completions form (``role``, ``content``, ``tool_calls``, ``tool_call_id``)."""

ToolDefinition = Mapping[str, Any]
"""One tool in OpenAI form: ``{"type": "function", "function": {"name", "description", "parameters"}}``."""


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ModelToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as streamed by the model; may be malformed


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StepCompleted:
    """The model finished one step: its whole text, the tool calls it asked for, and what it cost."""

    content: str
    tool_calls: Sequence[ModelToolCall]
    usage: Usage
    finish_reason: Literal["stop", "tool_calls", "length", "content_filter", "other"]


ModelEvent = TextDelta | StepCompleted


class ChatModel(Protocol):
    """A streaming chat model with tool calling.

    ``stream`` yields ``TextDelta`` events as text arrives and ends with exactly one ``StepCompleted``.

    Raises (from the iterator):
        ModelNotConfigured: no endpoint or key is configured.
        ModelUnavailable: rate limits, 5xx or timeouts persisted through the bounded retries.
        ModelRequestRejected: the endpoint refused the request (4xx other than 429).
        ModelStreamInterrupted: the stream broke after text had started to arrive (never retried, so
            nothing is shown twice).
    """

    @property
    def model_name(self) -> str: ...

    @property
    def configured(self) -> bool: ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolDefinition],
        *,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[ModelEvent, None]:
        """Close it with ``contextlib.aclosing`` so an abandoned stream releases its connection at once."""
        ...

    async def aclose(self) -> None: ...
