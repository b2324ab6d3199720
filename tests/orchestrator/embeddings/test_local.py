"""The offline embedding model: real ONNX weights on onnxruntime, off the event loop, without torch."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncGenerator, Sequence

import anyio
import anyio.lowlevel
import numpy as np
import pytest

from orchestrator.embeddings.cached import CachedEmbedder
from orchestrator.embeddings.local import DIMENSIONS, LocalEmbedder
from orchestrator.embeddings.types import Vectors


@pytest.fixture
async def embedder() -> AsyncGenerator[LocalEmbedder]:
    local = LocalEmbedder(threads=1)
    yield local
    await local.aclose()


async def test_vectors_are_unit_length_rows_of_the_model_size(embedder: LocalEmbedder) -> None:
    vectors = await embedder.embed(["Book a table for two", "", "x" * 5_000])

    assert vectors.shape == (3, DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


async def test_related_sentences_are_closer_than_unrelated_ones(embedder: LocalEmbedder) -> None:
    pet, cat, weather = await embedder.embed(
        ["My cat is called Miso", "What is the name of my pet?", "Will it rain in Paris tomorrow?"]
    )

    assert float(pet @ cat) > float(pet @ weather) + 0.2


async def test_many_texts_are_embedded_in_batches_with_the_same_result(embedder: LocalEmbedder) -> None:
    texts = [f"note number {index} about the quarterly report" for index in range(70)]

    together = await embedder.embed(texts)
    alone = await embedder.embed([texts[65]])

    assert together.shape == (70, DIMENSIONS)
    assert np.allclose(together[65], alone[0], atol=1e-3)


async def test_the_event_loop_keeps_running_while_texts_are_embedded(embedder: LocalEmbedder) -> None:
    await embedder.embed(["load the model first"])
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        await embedder.embed([f"a long enough sentence to keep the model busy, number {i}" for i in range(64)])
        group.cancel_scope.cancel()

    assert ticks > 10


async def test_a_cached_embedder_embeds_each_text_once(embedder: LocalEmbedder) -> None:
    calls: list[int] = []

    class Counting:
        model_id = embedder.model_id

        async def embed(self, texts: Sequence[str]) -> Vectors:
            calls.append(len(texts))
            return await embedder.embed(texts)

        async def aclose(self) -> None: ...

    cached = CachedEmbedder(Counting(), capacity=10)

    first = await cached.embed(["alpha", "beta"])
    second = await cached.embed(["beta", "alpha", "gamma"])

    assert calls == [2, 1]
    assert np.allclose(first[0], second[1])
    assert np.allclose(first[1], second[0])


def test_the_environment_has_no_torch() -> None:
    assert importlib.util.find_spec("torch") is None
