"""The model used when no endpoint or key is configured: the service still starts, and every turn says why not."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from orchestrator.errors import ModelNotConfigured
from orchestrator.llm.types import ChatMessage, ModelEvent, ToolDefinition


class UnconfiguredChatModel:
    """A ``ChatModel`` whose every stream raises ``ModelNotConfigured``."""

    def __init__(self, model: str = "") -> None:
        self._model = model

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def configured(self) -> bool:
        return False

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolDefinition],
        *,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[ModelEvent, None]:
        """Raises:
        ModelNotConfigured: always, from the first iteration (like a real model's errors).
        """
        raise ModelNotConfigured()
        yield  # a generator function, so the error comes from the iterator as the protocol promises

    async def aclose(self) -> None:
        return None
