"""Embeddings from an OpenAI-compatible endpoint: the fake server over real HTTP."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.embeddings.openai_embedder import OpenAIEmbedder
from orchestrator.errors import EmbeddingUnavailable
from tests.fakes.openai_server import FakeOpenAI, FakeOpenAIServer


async def test_vectors_come_back_in_order_as_unit_length_rows(
    openai_server: FakeOpenAIServer, fake_openai: FakeOpenAI
) -> None:
    embedder = OpenAIEmbedder(
        api_key=openai_server.api_key, base_url=openai_server.base_url, model="embed-small", dimensions=32
    )
    try:
        vectors = await embedder.embed(["red apples", "green pears", "red apples"])
    finally:
        await embedder.aclose()

    assert vectors.shape == (3, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2])
    [request] = fake_openai.embedding_requests
    assert (request["model"], request["dimensions"], request["encoding_format"]) == ("embed-small", 32, "base64")
    assert embedder.model_id == "embed-small-32"


async def test_a_refused_key_is_reported_as_unavailable_embeddings(openai_server: FakeOpenAIServer) -> None:
    embedder = OpenAIEmbedder(api_key="sk-wrong", base_url=openai_server.base_url, model="embed-small", max_retries=0)
    try:
        with pytest.raises(EmbeddingUnavailable):
            await embedder.embed(["anything"])
    finally:
        await embedder.aclose()


async def test_an_unreachable_endpoint_is_reported_as_unavailable_embeddings() -> None:
    embedder = OpenAIEmbedder(
        api_key="sk-x", base_url="http://127.0.0.1:9/v1", model="m", timeout_seconds=2, max_retries=0
    )
    try:
        with pytest.raises(EmbeddingUnavailable):
            await embedder.embed(["anything"])
    finally:
        await embedder.aclose()
