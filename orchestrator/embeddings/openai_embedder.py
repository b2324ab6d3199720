"""``Embedder`` over the OpenAI embeddings API, or any compatible endpoint (``/v1/embeddings``)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import openai

from orchestrator.embeddings.types import Vectors, normalized
from orchestrator.errors import EmbeddingUnavailable
from orchestrator.llm.openai_model import OPENAI_BASE_URL

BATCH_SIZE: Final = 256
"""Inputs per request (the API accepts up to 2048)."""
MAX_INPUT_CHARS: Final = 8_000
"""Texts are cut to this many characters, safely under the API's 8192-token limit per input."""
_REASON_MAX_CHARS: Final = 300


class OpenAIEmbedder:
    """Embeds through ``POST {base_url}/embeddings``; the SDK retries 429, 5xx and timeouts (bounded).

    Args:
        api_key: sent as a bearer token; never logged.
        base_url: the endpoint's ``.../v1`` URL; ``None`` means api.openai.com.
        model: e.g. ``text-embedding-3-small``.
        dimensions: asks the model for shorter vectors (text-embedding-3 models); ``None``: the model's own size.
        timeout_seconds: per request.
        max_retries: the SDK's retries after the first attempt.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        dimensions: int | None = None,
        timeout_seconds: float = 30,
        max_retries: int = 2,
    ) -> None:
        self._model = model
        self._dimensions = dimensions
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url or OPENAI_BASE_URL, timeout=timeout_seconds, max_retries=max_retries
        )

    @property
    def model_id(self) -> str:
        return f"{self._model}-{self._dimensions}" if self._dimensions else self._model

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Raises: EmbeddingUnavailable."""
        parts: list[Vectors] = []
        for start in range(0, len(texts), BATCH_SIZE):
            parts.append(await self._embed_batch(texts[start : start + BATCH_SIZE]))
        if not parts:
            return np.zeros((0, self._dimensions or 0), dtype=np.float32)
        return np.concatenate(parts)

    async def aclose(self) -> None:
        await self._client.close()

    async def _embed_batch(self, texts: Sequence[str]) -> Vectors:
        body: dict[str, Any] = {
            "model": self._model,
            "input": [text[:MAX_INPUT_CHARS] or " " for text in texts],
            "encoding_format": "base64",  # a quarter of the bytes of JSON floats, and no float parsing
        }
        if self._dimensions:
            body["dimensions"] = self._dimensions
        try:
            response: Any = await self._client.post("/embeddings", body=body, cast_to=object)
        except openai.APIStatusError as exc:
            raise EmbeddingUnavailable(
                f"the endpoint answered {exc.status_code}: {exc.message}"[:_REASON_MAX_CHARS]
            ) from exc
        except openai.APIError as exc:
            raise EmbeddingUnavailable(f"could not reach the endpoint: {exc}"[:_REASON_MAX_CHARS]) from exc
        try:
            rows = sorted(response["data"], key=lambda item: item["index"])
            vectors = [_decode(row["embedding"]) for row in rows]
            if len(vectors) != len(texts) or len({len(vector) for vector in vectors}) != 1:
                raise ValueError("one vector of one size per input")
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingUnavailable(f"the endpoint's answer is malformed ({exc})") from exc
        return normalized(np.stack(vectors))


def _decode(embedding: Any) -> np.ndarray[Any, np.dtype[np.float32]]:
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4").astype(np.float32)
    if isinstance(embedding, list):
        return np.asarray(embedding, dtype=np.float32)
    raise TypeError(f"an embedding must be base64 text or a list of numbers, not {type(embedding).__name__}")
