"""The fake OpenAI server speaks OpenAI's wire format and refuses what OpenAI would refuse."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer, echo, text, tool_calls, tool_then_answer

REPO_ROOT = Path(__file__).resolve().parents[3]
USER_ASKS: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Add milk to my list"}]


@pytest.fixture
async def client(openai_server: FakeOpenAIServer, fake_openai: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(api_key=openai_server.api_key, base_url=openai_server.base_url, max_retries=0)
    yield sdk
    await sdk.close()


async def test_a_stream_is_framed_exactly_like_openai(openai_server: FakeOpenAIServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text("Hi there", chunk_size=4))
    body = {"model": "fake-gpt", "messages": USER_ASKS, "stream": True, "stream_options": {"include_usage": True}}

    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{openai_server.base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {openai_server.api_key}"},
        )

    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [chunk["choices"][0]["delta"].get("content") for chunk in chunks[1:3]] == ["Hi t", "here"]
    assert chunks[3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[4]["choices"] == []
    assert chunks[4]["usage"]["total_tokens"] == chunks[4]["usage"]["prompt_tokens"] + 2


async def test_the_sdk_reads_a_streamed_tool_call(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls([("notes__add", {"text": "milk"})], chunk_size=2))

    stream = await client.chat.completions.create(model="fake-gpt", messages=[*USER_ASKS], stream=True)
    arguments = ""
    finish_reason = None
    async for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                arguments += call.function.arguments or "" if call.function else ""
            finish_reason = choice.finish_reason or finish_reason

    assert json.loads(arguments) == {"text": "milk"}
    assert finish_reason == "tool_calls"


async def test_a_reply_can_be_fetched_without_streaming(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls([("notes__add", "{}"), ("notes__list", "{}")]))

    completion = await client.chat.completions.create(model="fake-gpt", messages=[*USER_ASKS])

    calls = completion.choices[0].message.tool_calls or []
    assert [call.function.name for call in calls if call.type == "function"] == ["notes__add", "notes__list"]
    assert len({call.id for call in calls}) == 2
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0


async def test_every_request_is_recorded(client: openai.AsyncOpenAI, fake_openai: FakeOpenAI) -> None:
    await client.chat.completions.create(model="fake-gpt", messages=[*USER_ASKS])

    assert fake_openai.requests == [{"model": "fake-gpt", "messages": USER_ASKS}]


async def test_a_wrong_api_key_is_refused(openai_server: FakeOpenAIServer, fake_openai: FakeOpenAI) -> None:
    intruder = openai.AsyncOpenAI(api_key="sk-real-looking-key", base_url=openai_server.base_url, max_retries=0)

    with pytest.raises(openai.AuthenticationError):
        await intruder.chat.completions.create(model="fake-gpt", messages=[*USER_ASKS])
    await intruder.close()

    assert fake_openai.requests == []
    assert fake_openai.rejected_keys == 1


async def test_unanswered_tool_calls_are_refused_like_openai_refuses_them(
    client: openai.AsyncOpenAI, fake_openai: FakeOpenAI
) -> None:
    messages: list[ChatCompletionMessageParam] = [
        *USER_ASKS,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "notes__add", "arguments": "{}"}}],
        },
        {"role": "user", "content": "Well?"},
    ]

    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="fake-gpt", messages=messages)


def test_tool_then_answer_calls_the_tool_then_quotes_its_result() -> None:
    respond = tool_then_answer("notes__add", {"text": "milk"})
    call = {"id": "call_1", "type": "function", "function": {"name": "notes__add", "arguments": "{}"}}

    first = respond({"messages": USER_ASKS})
    second = respond(
        {
            "messages": [
                *USER_ASKS,
                {"role": "assistant", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "note 7 saved"},
            ]
        }
    )

    assert first == tool_calls([("notes__add", {"text": "milk"})])
    assert second == text("The tool said: note 7 saved")


def test_echo_answers_with_the_last_user_message() -> None:
    assert echo({"messages": [{"role": "system", "content": "Be brief."}, *USER_ASKS]}) == text("Add milk to my list")


async def test_models_and_embeddings_are_served(client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    embeddings = await client.embeddings.create(
        model="fake-embed", input=["buy milk today", "buy milk tomorrow", "quantum chromodynamics"], dimensions=32
    )

    assert [model.id for model in models.data] == ["fake-gpt"]
    milk_today, milk_tomorrow, physics = (item.embedding for item in embeddings.data)
    assert len(milk_today) == 32
    assert math.fsum(a * b for a, b in zip(milk_today, milk_tomorrow, strict=True)) > math.fsum(
        a * b for a, b in zip(milk_today, physics, strict=True)
    )


def test_the_command_line_server_answers_until_stopped() -> None:
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--api-key", "sk-cli"),
            *("--responder", "tool_then_answer", "--tool", "notes__add", "--arguments", '{"text": "milk"}'),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        response = httpx.post(
            f"{base_url}/chat/completions",
            json={"model": "fake-gpt", "messages": USER_ASKS},
            headers={"Authorization": "Bearer sk-cli"},
            timeout=10,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert response.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "notes__add"
