"""The VectorStore protocol: collections of points (id, vector, payload), every read and delete filtered.

Every search, listing, count and delete takes ``where``: exact values that payload fields must have (``{"user_id":
...}``). It may not be empty, and the backend applies it server-side, so one tenant's points never leave the store
for another tenant's query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Where = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """What a collection holds and how it is indexed.

    Attributes:
        name: the collection's name.
        dimensions: the vectors' length (cosine distance).
        tenant_field: the keyword field every query filters on (indexed as Qdrant's tenant key).
        keyword_fields: further keyword fields used in ``where``.
        order_field: a float field that listings are ordered by, newest (largest) first.
    """

    name: str
    dimensions: int
    tenant_field: str
    keyword_fields: tuple[str, ...] = ()
    order_field: str | None = None


@dataclass(frozen=True, slots=True)
class VectorPoint:
    id: str  # a UUID
    vector: Sequence[float]
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StoredPoint:
    id: str
    payload: Mapping[str, Any]
    score: float | None = None  # cosine similarity, for search results


class VectorStore(Protocol):
    """Points in named collections. Implementations: ``EdgeVectorStore`` (embedded), ``QdrantVectorStore``.

    Raises (from every method):
        VectorStoreUnavailable: the store failed or did not answer in time.
        ValueError: ``where`` is empty.
    """

    async def ensure_collection(self, spec: CollectionSpec) -> None:
        """Create the collection and its payload indexes unless it exists."""
        ...

    async def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None: ...

    async def search(
        self, collection: str, vector: Sequence[float], *, where: Where, limit: int, min_score: float | None = None
    ) -> list[StoredPoint]:
        """The ``limit`` points most similar to ``vector``, best first."""
        ...

    async def scroll(
        self, collection: str, *, where: Where, limit: int, order_field: str, before: float | None = None
    ) -> list[StoredPoint]:
        """Up to ``limit`` points, largest ``order_field`` first, only those below ``before`` when given."""
        ...

    async def count(self, collection: str, *, where: Where, ids: Sequence[str] | None = None) -> int:
        """How many points match ``where`` (only those among ``ids`` when given)."""
        ...

    async def delete(self, collection: str, *, where: Where, ids: Sequence[str] | None = None) -> None:
        """Delete the points matching ``where`` (only those among ``ids`` when given)."""
        ...

    async def aclose(self) -> None: ...


def check_where(where: Where) -> None:
    """Raises: ValueError: ``where`` is empty (a query without a tenant filter is a bug, never a feature)."""
    if not where:
        raise ValueError("every vector store query must be filtered (where is empty)")
