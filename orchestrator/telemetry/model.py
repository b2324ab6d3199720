"""A ``ChatModel`` that measures the one it wraps: a span per call (GenAI conventions) and Prometheus metrics."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Sequence

import anyio
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from orchestrator.llm.types import ChatMessage, ChatModel, ModelEvent, StepCompleted, TextDelta, ToolDefinition
from orchestrator.telemetry.metrics import LLM_REQUEST_DURATION, OPENAI_TOKENS
from orchestrator.telemetry.tracing import content_attribute, tracer


class TracedChatModel:
    """Wraps ``model``; each ``stream`` is one ``chat <model>`` client span with the model, tokens and finish reason.

    Args:
        model: the model that does the work.
        system: ``gen_ai.provider.name`` (``openai`` for any OpenAI-compatible endpoint).
        record_content: also record the messages sent and the text received (off by default: personal data).
    """

    def __init__(self, model: ChatModel, *, system: str = "openai", record_content: bool = False) -> None:
        self._model = model
        self._system = system
        self._record_content = record_content

    @property
    def model_name(self) -> str:
        return self._model.model_name

    @property
    def configured(self) -> bool:
        return self._model.configured

    async def aclose(self) -> None:
        await self._model.aclose()

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolDefinition], *, max_tokens: int | None = None
    ) -> AsyncGenerator[ModelEvent, None]:
        # The span is not made current: a generator's context is its consumer's, so attaching one here would leak
        # into the loop between two events. Nothing runs beneath a model call anyway.
        span = tracer.start_span(f"chat {self.model_name}", kind=SpanKind.CLIENT)
        if span.is_recording():
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": self._system,
                    "gen_ai.system": self._system,
                    "gen_ai.request.model": self.model_name,
                    "gen_ai.request.tools": len(tools),
                }
            )
            if max_tokens is not None:
                span.set_attribute("gen_ai.request.max_tokens", max_tokens)
            if self._record_content:
                span.set_attribute("gen_ai.input.messages", content_attribute(json.dumps(list(messages), default=str)))
        started = time.perf_counter()
        outcome = "error"
        text: list[str] = []
        try:
            async for event in self._model.stream(messages, tools, max_tokens=max_tokens):
                if isinstance(event, TextDelta):
                    if self._record_content:
                        text.append(event.text)
                else:
                    outcome = "ok"
                    self._completed(span, event)
                yield event
        except BaseException as exc:
            if outcome != "ok" and isinstance(exc, GeneratorExit | anyio.get_cancelled_exc_class()):
                outcome = "cancelled"  # a Stop, or the client went away
            elif outcome != "ok":
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.set_attribute("error.type", type(exc).__name__)
            raise
        finally:
            if self._record_content and text:
                span.set_attribute("gen_ai.output.messages", content_attribute("".join(text)))
            LLM_REQUEST_DURATION.labels(self.model_name, outcome).observe(time.perf_counter() - started)
            span.end()

    def _completed(self, span: Span, step: StepCompleted) -> None:
        OPENAI_TOKENS.labels(self.model_name, "prompt").inc(step.usage.prompt_tokens)
        OPENAI_TOKENS.labels(self.model_name, "completion").inc(step.usage.completion_tokens)
        if span.is_recording():
            span.set_attributes(
                {
                    "gen_ai.response.model": self.model_name,
                    "gen_ai.usage.input_tokens": step.usage.prompt_tokens,
                    "gen_ai.usage.output_tokens": step.usage.completion_tokens,
                    "gen_ai.response.finish_reasons": [step.finish_reason],
                    "gen_ai.response.tool_calls": len(step.tool_calls),
                }
            )
