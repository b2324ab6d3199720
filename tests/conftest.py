"""Fixtures shared by the whole suite: one fake OpenAI-compatible server per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer, echo


@pytest.fixture(scope="session")
def openai_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(FakeOpenAI()) as server:
        yield server


@pytest.fixture
def fake_openai(openai_server: FakeOpenAIServer) -> FakeOpenAI:
    """The fake model, reset: an empty script, the echo responder and request validation on."""
    fake = openai_server.fake
    fake.reset(responder=echo)
    fake.validate = True
    return fake
