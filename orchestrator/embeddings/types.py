"""The Embedder protocol: texts in, unit-length vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
"""A ``(len(texts), dimensions)`` array of unit-length rows (cosine similarity is a dot product)."""


class Embedder(Protocol):
    """Turns texts into vectors, never blocking the event loop.

    Raises (from ``embed``):
        EmbeddingUnavailable: the model could not be loaded or run, or the endpoint kept failing.
    """

    @property
    def model_id(self) -> str:
        """Names the model and its settings: vectors from different ids are not comparable."""
        ...

    async def embed(self, texts: Sequence[str]) -> Vectors: ...

    async def aclose(self) -> None: ...


def normalized(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)
