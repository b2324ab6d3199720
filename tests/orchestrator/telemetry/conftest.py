"""Spans recorded in memory: the process's tracer provider gets one processor that records while a test asks."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orchestrator.telemetry.tracing import setup_tracing
from tests.orchestrator.api.conftest import make_settings, service

__all__ = ["make_settings", "recorded_spans", "service"]


class _WhileRecording(SpanProcessor):
    """Forwards spans to the exporter only while a test records (the provider outlives the test)."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._inner = SimpleSpanProcessor(exporter)
        self.recording = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return

    def on_end(self, span: ReadableSpan) -> None:
        if self.recording:
            self._inner.on_end(span)


@pytest.fixture(scope="session")
def _span_recorder() -> tuple[_WhileRecording, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    recorder = _WhileRecording(exporter)
    setup_tracing("mcp-assistant-tests", "http://127.0.0.1:9", processor=recorder)
    return recorder, exporter


@pytest.fixture
def recorded_spans(_span_recorder: tuple[_WhileRecording, InMemorySpanExporter]) -> Generator[InMemorySpanExporter]:
    """The spans that end during the test."""
    recorder, exporter = _span_recorder
    exporter.clear()
    recorder.recording = True
    yield exporter
    recorder.recording = False
    exporter.clear()
