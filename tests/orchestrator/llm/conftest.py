from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestrator.llm.openai_model import OpenAIChatModel
from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer


class RecordedSleeps:
    """Stands in for ``asyncio.sleep`` between retries: remembers each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


@pytest.fixture
async def model(
    openai_server: FakeOpenAIServer, fake_openai: FakeOpenAI, sleeps: RecordedSleeps
) -> AsyncIterator[OpenAIChatModel]:
    chat_model = OpenAIChatModel(
        api_key=openai_server.api_key,
        base_url=openai_server.base_url,
        model="fake-gpt",
        temperature=None,
        max_tokens=None,
        max_retries=2,
        retry_max_wait=20,
        sleep=sleeps,
    )
    yield chat_model
    await chat_model.aclose()
