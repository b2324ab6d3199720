"""An ``Embedder`` that remembers recent texts, so one turn embeds its message once for memory and for tools."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from orchestrator.embeddings.types import Embedder, Vectors


class CachedEmbedder:
    """Wraps an ``Embedder`` with a least-recently-used cache of ``capacity`` texts."""

    def __init__(self, inner: Embedder, *, capacity: int = 1024) -> None:
        self._inner = inner
        self._capacity = capacity
        self._cache: OrderedDict[str, Vectors] = OrderedDict()

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Raises: EmbeddingUnavailable."""
        missing = list(dict.fromkeys(text for text in texts if text not in self._cache))
        if missing:
            fresh = await self._inner.embed(missing)
            for text, vector in zip(missing, fresh, strict=True):
                self._cache[text] = vector
                if len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        rows: list[Vectors] = []
        for text in texts:
            vector = self._cache.get(text)
            if vector is None:  # pushed out by this very call (more distinct texts than the capacity)
                vector = (await self._inner.embed([text]))[0]
            else:
                self._cache.move_to_end(text)
            rows.append(vector)
        if not rows:
            return await self._inner.embed([])
        return np.stack(rows)

    async def aclose(self) -> None:
        await self._inner.aclose()
