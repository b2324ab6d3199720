"""``VectorStore`` on qdrant-client: a Qdrant server (production), or qdrant-client's own local mode.

One collection per kind of data, every point tagged with its tenant, the tenant field indexed as Qdrant's tenant key
(``is_tenant``), so a user-filtered search reads only that user's part of the index. The same code runs against a
server (``AsyncQdrantClient(url=...)``) and against local mode (``location=":memory:"`` or ``path=...``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TypeVar

import anyio
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ApiException

from orchestrator.errors import VectorStoreUnavailable
from orchestrator.vectors.types import CollectionSpec, StoredPoint, VectorPoint, Where, check_where

T = TypeVar("T")


class QdrantVectorStore:
    """Collections in Qdrant through ``client``, which this store closes.

    Args:
        client: e.g. ``AsyncQdrantClient(url=..., api_key=...)``.
        timeout_seconds: how long one operation may take before it counts as failed.
    """

    def __init__(self, client: AsyncQdrantClient, *, timeout_seconds: float = 10.0) -> None:
        self._client = client
        self._timeout = timeout_seconds
        self._known: set[str] = set()
        self._creating = anyio.Lock()

    async def ensure_collection(self, spec: CollectionSpec) -> None:
        if spec.name in self._known:
            return
        async with self._creating:  # two first uses at once create the collection once
            if spec.name not in self._known:
                await self._create(spec)

    async def _create(self, spec: CollectionSpec) -> None:
        if not await self._run(self._client.collection_exists(spec.name)):
            await self._run(
                self._client.create_collection(
                    spec.name,
                    vectors_config=models.VectorParams(size=spec.dimensions, distance=models.Distance.COSINE),
                    # Per-tenant HNSW graphs instead of one global graph: every query is filtered by tenant.
                    hnsw_config=models.HnswConfigDiff(payload_m=16, m=0),
                )
            )
            tenant = models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
            await self._run(self._client.create_payload_index(spec.name, spec.tenant_field, field_schema=tenant))
            for field in spec.keyword_fields:
                await self._run(
                    self._client.create_payload_index(spec.name, field, field_schema=models.PayloadSchemaType.KEYWORD)
                )
            if spec.order_field is not None:
                await self._run(
                    self._client.create_payload_index(
                        spec.name, spec.order_field, field_schema=models.PayloadSchemaType.FLOAT
                    )
                )
        self._known.add(spec.name)

    async def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        structs = [
            models.PointStruct(id=point.id, vector=list(point.vector), payload=dict(point.payload)) for point in points
        ]
        await self._run(self._client.upsert(collection, structs, wait=True))

    async def search(
        self, collection: str, vector: Sequence[float], *, where: Where, limit: int, min_score: float | None = None
    ) -> list[StoredPoint]:
        response = await self._run(
            self._client.query_points(
                collection,
                query=list(vector),
                query_filter=_filter(where),
                limit=limit,
                score_threshold=min_score,
                with_payload=True,
            )
        )
        return [StoredPoint(str(point.id), point.payload or {}, point.score) for point in response.points]

    async def scroll(
        self, collection: str, *, where: Where, limit: int, order_field: str, before: float | None = None
    ) -> list[StoredPoint]:
        records, _ = await self._run(
            self._client.scroll(
                collection,
                scroll_filter=_filter(where, below=(order_field, before) if before is not None else None),
                limit=limit,
                order_by=models.OrderBy(key=order_field, direction=models.Direction.DESC),
                with_payload=True,
            )
        )
        return [StoredPoint(str(record.id), record.payload or {}) for record in records]

    async def count(self, collection: str, *, where: Where, ids: Sequence[str] | None = None) -> int:
        result = await self._run(self._client.count(collection, count_filter=_filter(where, ids=ids), exact=True))
        return result.count

    async def delete(self, collection: str, *, where: Where, ids: Sequence[str] | None = None) -> None:
        selector = models.FilterSelector(filter=_filter(where, ids=ids))
        await self._run(self._client.delete(collection, points_selector=selector, wait=True))

    async def aclose(self) -> None:
        await self._client.close()

    async def _run(self, operation: Awaitable[T]) -> T:
        try:
            with anyio.fail_after(self._timeout):
                return await operation
        except TimeoutError:
            raise VectorStoreUnavailable(f"Qdrant did not answer within {self._timeout:g}s") from None
        except (ApiException, OSError, ValueError) as exc:  # HTTP/gRPC failures, refused requests, local-mode errors
            raise VectorStoreUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from exc


def _filter(where: Where, *, ids: Sequence[str] | None = None, below: tuple[str, float] | None = None) -> models.Filter:
    check_where(where)
    conditions: list[models.Condition] = [
        models.FieldCondition(key=key, match=models.MatchValue(value=value)) for key, value in where.items()
    ]
    if below is not None:
        conditions.append(models.FieldCondition(key=below[0], range=models.Range(lt=below[1])))
    if ids is not None:
        # Ids are checked together with ``where``, so the id of another tenant's point matches nothing.
        conditions.append(models.HasIdCondition(has_id=list(ids)))
    return models.Filter(must=conditions)
