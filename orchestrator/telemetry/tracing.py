"""OpenTelemetry tracing: one trace per chat turn, exported over OTLP/HTTP when ``OTEL_ENABLED``.

The tracer provider is process-wide (as OpenTelemetry intends): :func:`setup_tracing` installs it once, and every
tracer of this package and of the instrumentation libraries reads it. Without it, spans cost next to nothing.
Prompts, replies and tool arguments are recorded only with ``OTEL_RECORD_CONTENT=true``.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind

logger = logging.getLogger(__name__)

tracer = trace.get_tracer("mcp-assistant")

AGENT_NAME = "mcp-assistant"


def setup_tracing(
    service_name: str, endpoint: str, *, environment: str = "development", processor: SpanProcessor | None = None
) -> TracerProvider:
    """Install the process's tracer provider, exporting to the OTLP/HTTP collector at ``endpoint``.

    ``processor`` replaces the exporter (tests pass one with an in-memory exporter). A process that already has a
    provider keeps it: OpenTelemetry allows one per process.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        if processor is not None:
            current.add_span_processor(processor)
        return current
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name, "deployment.environment.name": environment})
    )
    if processor is None:
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    logger.info("tracing on: spans of %s go to %s", service_name, endpoint)
    return provider


@contextmanager
def turn_span(conversation_id: str) -> Generator[Span]:
    """The span of one chat turn (GenAI ``invoke_agent``); model and tool spans are its children."""
    with tracer.start_as_current_span(
        f"invoke_agent {AGENT_NAME}",
        kind=SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": AGENT_NAME,
            "gen_ai.conversation.id": conversation_id,
        },
    ) as span:
        yield span


def inject_trace_context(headers: MutableMapping[str, str]) -> None:
    """Add the current W3C trace context (``traceparent``, ``tracestate``) to outgoing request headers."""
    propagate.inject(headers)


def content_attribute(value: Any, *, limit: int = 4_000) -> str:
    """Content recorded in a span (only when enabled): text, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text[:limit]


def set_attributes(span: Span, attributes: Mapping[str, Any]) -> None:
    if span.is_recording():
        span.set_attributes({key: value for key, value in attributes.items() if value is not None})
