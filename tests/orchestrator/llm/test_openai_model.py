"""OpenAIChatModel against the fake OpenAI server, over real HTTP with the real client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import pytest

from orchestrator.errors import ModelRequestRejected, ModelStreamInterrupted, ModelUnavailable
from orchestrator.llm.openai_model import OpenAIChatModel
from orchestrator.llm.tools import ToolDefinitions
from orchestrator.llm.types import ChatModel, ModelEvent, StepCompleted, TextDelta
from tests.fakes.openai_script import TextReply
from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer, cut, error, hang, text, tool_calls
from tests.orchestrator.llm.conftest import RecordedSleeps

USER_ASKS = [{"role": "user", "content": "What is on my list?"}]
NOTES_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "notes__list", "parameters": {"type": "object", "properties": {}}},
}


async def collect(events: AsyncIterator[ModelEvent], into: list[ModelEvent] | None = None) -> list[ModelEvent]:
    seen = into if into is not None else []
    async for event in events:
        seen.append(event)
    return seen


def deltas(events: Sequence[ModelEvent]) -> list[str]:
    return [event.text for event in events if isinstance(event, TextDelta)]


def completed(events: Sequence[ModelEvent]) -> StepCompleted:
    assert isinstance(events[-1], StepCompleted)
    return events[-1]


async def test_text_streams_as_deltas_then_one_completed_step_with_usage(
    model: OpenAIChatModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(text("Milk, eggs and bread.", chunk_size=6))

    events = await collect(model.stream(USER_ASKS, []))

    assert deltas(events) == ["Milk, ", "eggs a", "nd bre", "ad."]
    step = completed(events)
    assert step.content == "Milk, eggs and bread."
    assert step.tool_calls == []
    assert step.finish_reason == "stop"
    assert step.usage.prompt_tokens > 0
    assert step.usage.completion_tokens > 0
    assert sum(isinstance(event, StepCompleted) for event in events) == 1


async def test_parallel_tool_calls_are_reassembled_from_split_argument_chunks(
    model: OpenAIChatModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        tool_calls(
            [("notes__add", {"text": "buy milk", "tags": ["shopping"]}), ("time__now", {"timezone": "Europe/Paris"})],
            chunk_size=3,
        )
    )

    events = await collect(model.stream(USER_ASKS, [NOTES_TOOL]))

    assert deltas(events) == []
    step = completed(events)
    assert step.finish_reason == "tool_calls"
    assert [call.name for call in step.tool_calls] == ["notes__add", "time__now"]
    assert [json.loads(call.arguments) for call in step.tool_calls] == [
        {"text": "buy milk", "tags": ["shopping"]},
        {"timezone": "Europe/Paris"},
    ]
    ids = [call.id for call in step.tool_calls]
    assert all(call_id.startswith("call_") for call_id in ids)
    assert len(set(ids)) == 2


async def test_concurrent_turns_share_one_model_without_mixing_their_replies(model: OpenAIChatModel) -> None:
    shared: ChatModel = model
    questions = [f"question {number}" for number in range(8)]

    replies = await asyncio.gather(
        *(collect(shared.stream([{"role": "user", "content": question}], [])) for question in questions)
    )

    assert [completed(events).content for events in replies] == questions


async def test_a_length_cut_reply_reports_the_length_finish_reason(
    model: OpenAIChatModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(TextReply("It was a dark and", finish_reason="length"))

    events = await collect(model.stream(USER_ASKS, []))

    assert completed(events).finish_reason == "length"


async def test_the_request_streams_with_usage_and_sends_tools_only_when_there_are_some(
    model: OpenAIChatModel, fake_openai: FakeOpenAI
) -> None:
    await collect(model.stream(USER_ASKS, []))
    await collect(model.stream(USER_ASKS, [NOTES_TOOL], max_tokens=50))

    without_tools, with_tools = fake_openai.requests
    assert without_tools["stream"] is True
    assert without_tools["stream_options"] == {"include_usage": True}
    assert without_tools["messages"] == USER_ASKS
    assert "tools" not in without_tools
    assert "max_tokens" not in without_tools
    assert with_tools["tools"] == [NOTES_TOOL]
    assert with_tools["max_tokens"] == 50


async def test_tools_encoded_once_are_spliced_into_the_request_unchanged(
    model: OpenAIChatModel, fake_openai: FakeOpenAI
) -> None:
    tools = ToolDefinitions.encode(
        [NOTES_TOOL, {**NOTES_TOOL, "function": {**NOTES_TOOL["function"], "name": "b", "description": "Café ✓"}}]
    )

    await collect(model.stream(USER_ASKS, tools, max_tokens=7))

    [request] = fake_openai.requests
    assert request["tools"] == list(tools)
    assert (request["messages"], request["max_tokens"], request["stream"]) == (USER_ASKS, 7, True)


@pytest.mark.parametrize(
    ("failure", "expected_wait"),
    [
        pytest.param(error(429, retry_after=0.25), 0.25, id="retry-after-seconds"),
        pytest.param(error(503, retry_after_ms=1500), 1.5, id="retry-after-ms"),
    ],
)
async def test_a_rate_limit_is_retried_after_the_delay_the_server_asks_for(
    model: OpenAIChatModel,
    fake_openai: FakeOpenAI,
    sleeps: RecordedSleeps,
    failure: Any,
    expected_wait: float,
) -> None:
    fake_openai.script(failure, text("Here you go."))

    events = await collect(model.stream(USER_ASKS, []))

    assert completed(events).content == "Here you go."
    assert len(fake_openai.requests) == 2
    assert sleeps.waits == [pytest.approx(expected_wait)]


async def test_a_rate_limit_asking_for_a_longer_wait_than_allowed_ends_at_once(
    model: OpenAIChatModel, fake_openai: FakeOpenAI, sleeps: RecordedSleeps
) -> None:
    fake_openai.script(error(429, retry_after=600), text("never sent"))

    with pytest.raises(ModelUnavailable) as caught:
        await collect(model.stream(USER_ASKS, []))

    assert (caught.value.status_code, caught.value.attempts) == (429, 1)
    assert sleeps.waits == []
    assert len(fake_openai.requests) == 1


async def test_persistent_server_errors_make_the_model_unavailable_after_bounded_retries(
    model: OpenAIChatModel, fake_openai: FakeOpenAI, sleeps: RecordedSleeps
) -> None:
    fake_openai.script(error(500), error(500), error(500), text("never reached"))

    with pytest.raises(ModelUnavailable) as raised:
        await collect(model.stream(USER_ASKS, []))

    assert raised.value.attempts == 3  # max_retries=2, plus the first attempt
    assert raised.value.status_code == 500
    assert len(fake_openai.requests) == 3
    assert len(sleeps.waits) == 2
    assert sleeps.waits[0] < sleeps.waits[1] <= 20  # exponential backoff without Retry-After


async def test_a_bad_request_is_rejected_without_a_retry(
    model: OpenAIChatModel, fake_openai: FakeOpenAI, sleeps: RecordedSleeps
) -> None:
    fake_openai.script(error(400), text("never reached"))

    with pytest.raises(ModelRequestRejected) as raised:
        await collect(model.stream(USER_ASKS, []))

    assert raised.value.status_code == 400
    assert len(fake_openai.requests) == 1
    assert sleeps.waits == []


async def test_a_stream_cut_after_text_is_interrupted_and_keeps_the_text_already_streamed(
    model: OpenAIChatModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(cut(2, text("Hello world", chunk_size=5)), text("never reached"))
    seen: list[ModelEvent] = []

    with pytest.raises(ModelStreamInterrupted):
        await collect(model.stream(USER_ASKS, []), into=seen)

    assert seen == [TextDelta("Hello")]
    assert len(fake_openai.requests) == 1  # text was shown, so nothing is retried


async def test_a_stream_that_ends_without_a_finish_reason_is_interrupted(
    model: OpenAIChatModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(cut(3, text("Hello world", chunk_size=5), abrupt=False))
    seen: list[ModelEvent] = []

    with pytest.raises(ModelStreamInterrupted):
        await collect(model.stream(USER_ASKS, []), into=seen)

    assert deltas(seen) == ["Hello", " worl"]


async def test_a_stream_broken_before_any_output_is_retried(
    model: OpenAIChatModel, fake_openai: FakeOpenAI, sleeps: RecordedSleeps
) -> None:
    fake_openai.script(cut(3, tool_calls([("notes__list", "{}")])), text("Recovered."))

    events = await collect(model.stream(USER_ASKS, []))

    assert completed(events).content == "Recovered."
    assert len(fake_openai.requests) == 2
    assert len(sleeps.waits) == 1


async def test_an_endpoint_that_never_answers_times_out_and_is_unavailable(
    openai_server: FakeOpenAIServer, fake_openai: FakeOpenAI, sleeps: RecordedSleeps
) -> None:
    fake_openai.script(hang(30), hang(30))
    impatient = OpenAIChatModel(
        api_key=openai_server.api_key,
        base_url=openai_server.base_url,
        model="fake-gpt",
        temperature=None,
        max_tokens=None,
        timeout_seconds=0.2,
        max_retries=1,
        sleep=sleeps,
    )

    with pytest.raises(ModelUnavailable) as raised:
        await collect(impatient.stream(USER_ASKS, []))
    await impatient.aclose()

    assert raised.value.attempts == 2
    assert raised.value.status_code is None


async def test_a_caller_that_stops_reading_early_leaves_the_model_usable(
    model: OpenAIChatModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(text("A long answer that nobody reads to the end.", chunk_size=4), text("Second."))

    stream = model.stream(USER_ASKS, [])
    first = await anext(stream)
    assert isinstance(stream, AsyncGenerator)
    await stream.aclose()
    events = await collect(model.stream(USER_ASKS, []))

    assert first == TextDelta("A lo")
    assert completed(events).content == "Second."


async def test_a_wrong_api_key_is_rejected_and_nothing_reaches_the_script(
    openai_server: FakeOpenAIServer, fake_openai: FakeOpenAI, sleeps: RecordedSleeps
) -> None:
    intruder = OpenAIChatModel(
        api_key="sk-not-the-fake-key",
        base_url=openai_server.base_url,
        model="fake-gpt",
        temperature=None,
        max_tokens=None,
        sleep=sleeps,
    )

    with pytest.raises(ModelRequestRejected) as raised:
        await collect(intruder.stream(USER_ASKS, []))
    await intruder.aclose()

    assert raised.value.status_code == 401
    assert fake_openai.requests == []
    assert fake_openai.rejected_keys == 1
    assert sleeps.waits == []
