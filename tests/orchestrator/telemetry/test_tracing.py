"""One trace per chat turn, recorded in memory: the request, the turn, model calls, tool calls, the database.

The test MCP server runs over streamable HTTP and reports the ``traceparent`` header its tool call arrived with.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from frontend.app import create_app as create_frontend
from frontend.settings import load_settings as load_frontend_settings
from tests.fakes.mcp_http import HttpTestServer, running_http_server
from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.orchestrator.api.conftest import JWT_SECRET, SettingsFactory, bearer
from tests.support.redis import SHARED_REDIS_URL
from tests.support.service import Service, running_service
from tests.support.turns import json_turn, new_conversation

PROMPT = "Tell me the trace, and echo my-secret-argument"
SECRET_ARGUMENT = "my-secret-argument"


@pytest.fixture
async def web_server() -> AsyncGenerator[HttpTestServer]:
    async with running_http_server("streamable-http", name="web") as server:
        yield server


@pytest.fixture
async def traced(make_settings: SettingsFactory, web_server: HttpTestServer) -> AsyncGenerator[Service]:
    settings = make_settings({"web": {"url": web_server.url}}, otel_enabled=True, jwt_secret_key=JWT_SECRET)
    async with running_service(settings) as service:
        yield service


def attribute(span: ReadableSpan, key: str) -> object:
    return (span.attributes or {}).get(key)


def count(span: ReadableSpan, key: str) -> int:
    value = attribute(span, key)
    assert isinstance(value, int), f"{span.name}: {key} is {value!r}"
    return value


def system(span: ReadableSpan) -> object:
    return attribute(span, "db.system") or attribute(span, "db.system.name")


def hex_id(value: int, width: int) -> str:
    return f"{value:0{width}x}"


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [span for span in spans if span.parent is not None and span.parent.span_id == parent.context.span_id]


def descends_from(spans: Sequence[ReadableSpan], span: ReadableSpan, ancestor: ReadableSpan) -> bool:
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    assert ancestor.context is not None
    current: ReadableSpan | None = span
    while current is not None and current.parent is not None:
        if current.parent.span_id == ancestor.context.span_id:
            return True
        current = by_id.get(current.parent.span_id)
    return False


async def test_a_turn_with_two_tool_calls_is_one_trace_of_request_turn_model_tool_and_database_spans(
    traced: Service, fake_openai: FakeOpenAI, recorded_spans: InMemorySpanExporter
) -> None:
    fake_openai.script(
        tool_calls([("web__trace_context", {}), ("web__echo", {"text": SECRET_ARGUMENT})]),
        text("Here is the trace."),
    )
    headers = bearer("alice")
    conversation = await new_conversation(traced.client, headers)
    recorded_spans.clear()

    reply = await json_turn(traced.client, conversation, PROMPT, headers)

    spans = list(recorded_spans.get_finished_spans())
    [request] = [s for s in spans if s.kind == SpanKind.SERVER and s.name.startswith("POST /api/conversations/")]
    assert request.name == "POST /api/conversations/{conversation_id}/messages"
    assert request.parent is None
    assert request.context is not None
    trace_id = request.context.trace_id
    turn_spans = [s for s in spans if s.context is not None and s.context.trace_id == trace_id]

    [turn] = [s for s in turn_spans if s.name == "invoke_agent mcp-assistant"]
    assert descends_from(turn_spans, turn, request)
    assert attribute(turn, "gen_ai.conversation.id") == conversation

    under_turn = children(turn_spans, turn)
    models = sorted((s for s in under_turn if s.name == "chat fake-gpt"), key=lambda s: s.start_time or 0)
    tools = sorted(s.name for s in under_turn if s.name.startswith("execute_tool "))
    assert len(models) == 2
    assert tools == ["execute_tool echo", "execute_tool trace_context"]
    assert attribute(models[0], "gen_ai.request.model") == "fake-gpt"
    assert count(models[0], "gen_ai.usage.input_tokens") > 0
    assert attribute(models[0], "gen_ai.response.finish_reasons") == ("tool_calls",)
    assert sum(count(m, "gen_ai.usage.output_tokens") for m in models) == reply["completion_tokens"]

    echo = next(s for s in under_turn if s.name == "execute_tool echo")
    assert (attribute(echo, "mcp.server.id"), attribute(echo, "mcp.tool.outcome")) == ("web", "ok")
    assert (echo.end_time or 0) > (echo.start_time or 0)

    # The database calls of the turn belong to it.
    database = [s for s in turn_spans if system(s) == "sqlite"]
    assert any(descends_from(turn_spans, s, turn) for s in database)

    # The MCP server got the W3C trace context of the tool call in its HTTP request.
    traceparent = next(c["result"] for c in reply["tool_calls"] if c["name"] == "web__trace_context")
    version, sent_trace_id, sent_parent_id, _flags = traceparent.split("-")
    assert (version, sent_trace_id) == ("00", hex_id(trace_id, 32))
    call = next(s for s in under_turn if s.name == "execute_tool trace_context")
    sender = next(s for s in turn_spans if s.context is not None and hex_id(s.context.span_id, 16) == sent_parent_id)
    assert sender is call or descends_from(turn_spans, sender, call)


async def test_prompts_replies_and_tool_arguments_stay_out_of_spans_by_default(
    traced: Service, fake_openai: FakeOpenAI, recorded_spans: InMemorySpanExporter
) -> None:
    fake_openai.script(tool_calls([("web__echo", {"text": SECRET_ARGUMENT})]), text("Echoed the secret."))
    headers = bearer("alice")

    await json_turn(traced.client, await new_conversation(traced.client, headers), PROMPT, headers)

    recorded = " ".join(str(dict(span.attributes or {})) for span in recorded_spans.get_finished_spans())
    assert "execute_tool echo" in {span.name for span in recorded_spans.get_finished_spans()}
    assert SECRET_ARGUMENT not in recorded
    assert "Echoed the secret" not in recorded


async def test_with_content_recording_on_the_spans_carry_messages_and_arguments(
    make_settings: SettingsFactory,
    web_server: HttpTestServer,
    fake_openai: FakeOpenAI,
    recorded_spans: InMemorySpanExporter,
) -> None:
    settings = make_settings({"web": {"url": web_server.url}}, otel_enabled=True, otel_record_content=True)
    fake_openai.script(tool_calls([("web__echo", {"text": SECRET_ARGUMENT})]), text("Echoed the secret."))
    async with running_service(settings) as service:
        await json_turn(service.client, await new_conversation(service.client), PROMPT)

    spans = recorded_spans.get_finished_spans()
    echo = next(span for span in spans if span.name == "execute_tool echo")
    assert SECRET_ARGUMENT in str((echo.attributes or {})["gen_ai.tool.call.arguments"])
    model_attributes = [dict(span.attributes or {}) for span in spans if span.name == "chat fake-gpt"]
    assert any(PROMPT in str(attributes.get("gen_ai.input.messages")) for attributes in model_attributes)
    assert any("Echoed the secret" in str(attributes.get("gen_ai.output.messages")) for attributes in model_attributes)


async def test_the_frontend_proxy_and_the_orchestrator_share_one_trace(
    traced: Service, tmp_path: Path, recorded_spans: InMemorySpanExporter
) -> None:
    frontend = create_frontend(
        load_frontend_settings(
            _env_file=None,
            data_dir=tmp_path / "frontend",
            orchestrator_url=traced.url,
            jwt_secret_key=JWT_SECRET,
            frontend_secret_key="frontend-secret-" + "x" * 40,
            otel_enabled=True,
        )
    )
    browser = frontend.test_client()
    token = bearer("alice")["Authorization"]

    response = await anyio.to_thread.run_sync(
        lambda: browser.get("/api/conversations", headers={"Authorization": token})
    )

    assert response.status_code == 200
    spans = recorded_spans.get_finished_spans()
    [proxied] = [s for s in spans if s.kind == SpanKind.SERVER and s.name.endswith("/api/<path:path>")]
    [answered] = [s for s in spans if s.kind == SpanKind.SERVER and s.name == "GET /api/conversations"]
    assert proxied.context is not None
    assert answered.context is not None
    assert answered.context.trace_id == proxied.context.trace_id
    assert answered.parent is not None
    assert answered.parent.span_id == proxied.context.span_id


async def test_redis_calls_of_a_request_join_its_trace(
    make_settings: SettingsFactory, redis_prefix: str, recorded_spans: InMemorySpanExporter
) -> None:
    settings = make_settings(otel_enabled=True, redis_url=SHARED_REDIS_URL, redis_key_prefix=redis_prefix)
    async with running_service(settings) as service:
        recorded_spans.clear()
        response = await service.client.get("/api/conversations")

    assert response.status_code == 200
    spans = recorded_spans.get_finished_spans()
    [request] = [s for s in spans if s.kind == SpanKind.SERVER and s.name == "GET /api/conversations"]
    assert request.context is not None
    redis_calls = [
        s
        for s in spans
        if system(s) == "redis" and s.context is not None and s.context.trace_id == request.context.trace_id
    ]
    assert redis_calls  # the rate limit's counters
