"""The loop itself, on the real store, model client and MCP registry: the edges of a Stop."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from orchestrator.llm.openai_model import OpenAIChatModel
from orchestrator.loop.events import MessageEnd, TurnEvent
from orchestrator.loop.runner import LoopLimits, TurnRunner
from orchestrator.mcp.registry import McpRegistry
from orchestrator.memory.db import open_database
from orchestrator.memory.migrate import upgrade_database
from orchestrator.memory.store import SqlStore
from orchestrator.memory.types import UserIdentity
from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer, text

USER = UserIdentity("u-1")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncGenerator[SqlStore]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}"
    await upgrade_database(url)
    database = open_database(url)
    yield SqlStore(database)
    await database.dispose()


@pytest.fixture
async def model(openai_server: FakeOpenAIServer) -> AsyncGenerator[OpenAIChatModel]:
    chat_model = OpenAIChatModel(
        api_key=openai_server.api_key,
        base_url=openai_server.base_url,
        model="fake-gpt",
        temperature=None,
        max_tokens=None,
    )
    yield chat_model
    await chat_model.aclose()


async def test_a_stop_arriving_as_the_reply_ends_stores_the_reply_once(
    store: SqlStore, model: OpenAIChatModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(text("All done."))
    conversation = await store.create_conversation(USER.id)
    async with McpRegistry([]) as registry:
        runner = TurnRunner(model, registry, store, LoopLimits())
        started = await runner.start(USER, conversation.id, "hi")

        with anyio.CancelScope() as scope:

            async def emit(event: TurnEvent) -> None:
                if isinstance(event, MessageEnd):
                    scope.cancel()
                    await anyio.lowlevel.checkpoint()

            await runner.run(started, emit)

    messages = await store.list_messages(USER.id, conversation.id)
    assert [(m.role, m.status, m.content) for m in messages] == [
        ("user", "complete", "hi"),
        ("assistant", "complete", "All done."),
    ]
    assert started.end is not None
    assert (started.end.status, started.end.message_id) == ("complete", messages[1].id)


async def test_a_stop_mid_answer_records_how_the_turn_ended(
    store: SqlStore, model: OpenAIChatModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(text("one two three four five six", chunk_size=4))
    conversation = await store.create_conversation(USER.id)
    async with McpRegistry([]) as registry:
        runner = TurnRunner(model, registry, store, LoopLimits())
        started = await runner.start(USER, conversation.id, "count")
        tokens: list[str] = []

        with anyio.CancelScope() as scope:

            async def emit(event: TurnEvent) -> None:
                if event.event == "token":
                    tokens.append(getattr(event, "text", ""))
                    if len(tokens) == 2:
                        scope.cancel()
                        await anyio.lowlevel.checkpoint()

            await runner.run(started, emit)

    [_, reply] = await store.list_messages(USER.id, conversation.id)
    assert started.end is not None
    assert (reply.status, reply.content) == ("incomplete", "".join(tokens))
    assert (started.end.status, started.end.message_id, started.end.content) == ("incomplete", reply.id, reply.content)
