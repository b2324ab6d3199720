from __future__ import annotations

import pytest

from orchestrator.errors import ModelNotConfigured
from orchestrator.llm.types import ChatModel
from orchestrator.llm.unconfigured import UnconfiguredChatModel


async def test_an_unconfigured_model_refuses_every_turn() -> None:
    model: ChatModel = UnconfiguredChatModel()

    with pytest.raises(ModelNotConfigured):
        async for _ in model.stream([{"role": "user", "content": "hi"}], []):
            pass

    assert model.configured is False
    await model.aclose()
