"""MCP tool calls measured: a span per call (server, tool, status, duration) and Prometheus metrics.

Implements the registry's ``ToolCallObserver``. The span is current while the call runs, so the request to an
HTTP MCP server carries its W3C trace context (``orchestrator.mcp.transport`` injects it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from typing import Any

import anyio
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from orchestrator.errors import ServerUnavailable, ToolTimeout
from orchestrator.mcp.registry import ObservedCall
from orchestrator.telemetry.metrics import MCP_TOOL_CALL_DURATION, MCP_TOOL_CALLS
from orchestrator.telemetry.tracing import content_attribute, tracer


class _Call:
    def __init__(self, span: Span) -> None:
        self.span = span
        self.outcome = "failed"

    def finished(self, *, is_error: bool) -> None:
        self.outcome = "tool_error" if is_error else "ok"


class ToolCallTelemetry:
    """Args: record_content: also record the call's arguments (off by default: personal data)."""

    def __init__(self, *, record_content: bool = False) -> None:
        self._record_content = record_content

    @contextmanager
    def tool_call(self, server_id: str, tool: str, arguments: Mapping[str, Any]) -> Generator[ObservedCall]:
        started = time.perf_counter()
        with tracer.start_as_current_span(
            f"execute_tool {tool}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "mcp.server.id": server_id,
                "mcp.method.name": "tools/call",
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if self._record_content and span.is_recording():
                span.set_attribute("gen_ai.tool.call.arguments", content_attribute(json.dumps(dict(arguments))))
            call = _Call(span)
            try:
                yield call
            except ToolTimeout:
                call.outcome = "timeout"
                raise
            except ServerUnavailable:
                call.outcome = "unavailable"
                raise
            except anyio.get_cancelled_exc_class():
                call.outcome = "cancelled"
                raise
            finally:
                seconds = time.perf_counter() - started
                span.set_attribute("mcp.tool.outcome", call.outcome)
                if call.outcome != "ok":
                    span.set_status(Status(StatusCode.ERROR, call.outcome))
                    span.set_attribute("error.type", call.outcome)
                MCP_TOOL_CALLS.labels(server_id, tool, call.outcome).inc()
                MCP_TOOL_CALL_DURATION.labels(server_id, tool, call.outcome).observe(seconds)
