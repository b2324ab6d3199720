"""``VectorStore`` on Qdrant Edge (``qdrant-edge-py``): Qdrant's engine in-process, one shard per collection.

The embedded default. qdrant-client's own local mode scans every point in Python: at 100k points a user-filtered
search takes hundreds of milliseconds and persisted writes run at a few hundred per second (see bench/README.md).
Qdrant Edge is the same Rust engine as the server, with the tenant field's keyword index, so a filtered search
reads only that user's points.

Every call runs on one thread of the store's own (each takes well under a millisecond), so the event loop never
waits on the engine's locks or on the disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, TypeVar

import anyio
from qdrant_edge import (
    CountRequest,
    Direction,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    HasIdCondition,
    KeywordIndexParams,
    MatchValue,
    OrderBy,
    PayloadSchemaType,
    Point,
    Query,
    QueryRequest,
    RangeFloat,
    ScrollRequest,
    UpdateOperation,
)

from orchestrator.errors import VectorStoreUnavailable
from orchestrator.memory.worker import WorkerStopped, WorkerThread
from orchestrator.vectors.types import CollectionSpec, StoredPoint, VectorPoint, Where, check_where

logger = logging.getLogger(__name__)
T = TypeVar("T")

_SEARCH_THREADS: Final = 1
"""Threads of each shard's search pool: a user's points are few, so one thread answers in well under 1 ms."""


class EdgeVectorStore:
    """Collections as Qdrant Edge shards under ``path`` (``path/<collection>/``).

    Args:
        path: a directory of its own (created when missing).
        timeout_seconds: how long one operation may take before it counts as failed.
    """

    def __init__(self, path: Path, *, timeout_seconds: float = 10.0) -> None:
        self._path = path
        self._timeout = timeout_seconds
        self._shards: dict[str, EdgeShard] = {}
        self._worker = WorkerThread("vector-store")

    async def ensure_collection(self, spec: CollectionSpec) -> None:
        if spec.name not in self._shards:
            await self._run(lambda: self._open_once(spec))

    async def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        shard = self._shard(collection)
        edge_points = [Point(point.id, list(point.vector), dict(point.payload)) for point in points]
        await self._run(lambda: shard.update(UpdateOperation.upsert_points(edge_points)))

    async def search(
        self, collection: str, vector: Sequence[float], *, where: Where, limit: int, min_score: float | None = None
    ) -> list[StoredPoint]:
        shard = self._shard(collection)
        request = QueryRequest(
            limit=limit,
            query=Query.Nearest(list(vector)),
            filter=_filter(where),
            with_payload=True,
            score_threshold=min_score,
        )
        found = await self._run(lambda: shard.query(request))
        return [StoredPoint(str(point.id), point.payload or {}, point.score) for point in found]

    async def scroll(
        self, collection: str, *, where: Where, limit: int, order_field: str, before: float | None = None
    ) -> list[StoredPoint]:
        shard = self._shard(collection)
        request = ScrollRequest(
            limit=limit,
            filter=_filter(where, below=(order_field, before) if before is not None else None),
            with_payload=True,
            order_by=OrderBy(order_field, direction=Direction.Desc),
        )
        records, _ = await self._run(lambda: shard.scroll(request))
        return [StoredPoint(str(record.id), record.payload or {}) for record in records]

    async def count(self, collection: str, *, where: Where, ids: Sequence[str] | None = None) -> int:
        shard = self._shard(collection)
        request = CountRequest(exact=True, filter=_filter(where, ids=ids))
        return await self._run(lambda: shard.count(request))

    async def delete(self, collection: str, *, where: Where, ids: Sequence[str] | None = None) -> None:
        shard = self._shard(collection)
        condition = _filter(where, ids=ids)
        await self._run(lambda: shard.update(UpdateOperation.delete_points_by_filter(condition)))

    async def aclose(self) -> None:
        shards, self._shards = list(self._shards.values()), {}

        def close_all() -> None:
            for shard in shards:
                shard.flush()
                shard.close()

        try:
            await self._run(close_all)
        finally:
            await self._worker.stop()

    # --- internals --------------------------------------------------------------------------------------------------

    def _shard(self, collection: str) -> EdgeShard:
        shard = self._shards.get(collection)
        if shard is None:
            raise VectorStoreUnavailable(f"collection {collection!r} is not open (call ensure_collection first)")
        return shard

    def _open_once(self, spec: CollectionSpec) -> None:
        # On the store's thread, one call at a time: two first uses at once never open one shard twice.
        if spec.name not in self._shards:
            self._shards[spec.name] = self._open(spec)

    def _open(self, spec: CollectionSpec) -> EdgeShard:
        directory = self._path / spec.name
        if directory.is_dir() and any(directory.iterdir()):
            return EdgeShard.load(str(directory))
        directory.mkdir(parents=True, exist_ok=True)
        config = EdgeConfig(
            vectors=EdgeVectorParams(size=spec.dimensions, distance=Distance.Cosine),
            max_search_threads=_SEARCH_THREADS,
        )
        shard = EdgeShard.create(str(directory), config)
        shard.update(UpdateOperation.create_field_index(spec.tenant_field, KeywordIndexParams(is_tenant=True)))
        for field in spec.keyword_fields:
            shard.update(UpdateOperation.create_field_index(field, PayloadSchemaType.Keyword))
        if spec.order_field is not None:
            shard.update(UpdateOperation.create_field_index(spec.order_field, PayloadSchemaType.Float))
        logger.info("created vector collection %s", spec.name, extra={"path": str(directory)})
        return shard

    async def _run(self, operation: Callable[[], T]) -> T:
        try:
            with anyio.fail_after(self._timeout):
                return await self._worker.run(operation)
        except TimeoutError:
            raise VectorStoreUnavailable(f"an operation took longer than {self._timeout:g}s") from None
        except WorkerStopped:
            raise VectorStoreUnavailable("the vector store is closed") from None
        except (RuntimeError, ValueError, OSError) as exc:  # what the engine raises for I/O and invalid requests
            raise VectorStoreUnavailable(str(exc)) from exc


def _filter(where: Where, *, ids: Sequence[str] | None = None, below: tuple[str, float] | None = None) -> Filter:
    check_where(where)
    conditions: list[FieldCondition | HasIdCondition] = [
        FieldCondition(key, match=MatchValue(value)) for key, value in where.items()
    ]
    if below is not None:
        conditions.append(FieldCondition(below[0], range=RangeFloat(lt=below[1])))
    if ids is not None:
        # Ids are checked together with ``where``, so the id of another tenant's point matches nothing.
        conditions.append(HasIdCondition(set(ids)))
    return Filter(must=list(conditions))
