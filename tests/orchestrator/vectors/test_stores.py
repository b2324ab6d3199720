"""Both vector stores, through the same protocol: Qdrant Edge on disk, and qdrant-client (its local mode).

qdrant-client's local mode answers the same client calls a Qdrant server does, so the code path of
``QdrantVectorStore`` runs here whole except the network; no Qdrant server binary is available to the tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient

from orchestrator.errors import VectorStoreUnavailable
from orchestrator.vectors.edge import EdgeVectorStore
from orchestrator.vectors.qdrant import QdrantVectorStore
from orchestrator.vectors.types import CollectionSpec, VectorPoint, VectorStore

DIMENSIONS = 8
SPEC = CollectionSpec("things", DIMENSIONS, tenant_field="user_id", keyword_fields=("group",), order_field="at")


def vector(seed: int) -> list[float]:
    values = np.random.default_rng(seed).standard_normal(DIMENSIONS)
    return (values / np.linalg.norm(values)).tolist()


def point(user: str, seed: int, *, at: float = 0.0, group: str = "g") -> VectorPoint:
    return VectorPoint(str(uuid.uuid4()), vector(seed), {"user_id": user, "at": at, "group": group, "seed": seed})


@pytest.fixture(params=["edge", "qdrant-client"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncGenerator[VectorStore]:
    opened: VectorStore
    if request.param == "edge":
        opened = EdgeVectorStore(tmp_path / "vectors")
    else:
        opened = QdrantVectorStore(AsyncQdrantClient(location=":memory:"))
    await opened.ensure_collection(SPEC)
    yield opened
    await opened.aclose()


async def test_a_search_finds_only_the_tenants_points(store: VectorStore) -> None:
    await store.upsert("things", [point("alice", 1), point("bob", 1), point("alice", 2)])

    found = await store.search("things", vector(1), where={"user_id": "alice"}, limit=10)

    assert [hit.payload["user_id"] for hit in found] == ["alice", "alice"]
    assert found[0].payload["seed"] == 1
    assert found[0].score is not None
    assert found[0].score > 0.99


async def test_a_minimum_score_leaves_out_distant_points(store: VectorStore) -> None:
    await store.upsert("things", [point("alice", 1), point("alice", 2)])

    found = await store.search("things", vector(1), where={"user_id": "alice"}, limit=10, min_score=0.99)

    assert [hit.payload["seed"] for hit in found] == [1]


async def test_a_listing_is_newest_first_and_continues_before_a_time(store: VectorStore) -> None:
    await store.upsert("things", [point("alice", seed, at=float(seed)) for seed in range(5)] + [point("bob", 9, at=9)])

    first = await store.scroll("things", where={"user_id": "alice"}, limit=2, order_field="at")
    rest = await store.scroll("things", where={"user_id": "alice"}, limit=10, order_field="at", before=3.0)

    assert [hit.payload["seed"] for hit in first] == [4, 3]
    assert [hit.payload["seed"] for hit in rest] == [2, 1, 0]


async def test_deleting_by_id_never_reaches_another_tenants_point(store: VectorStore) -> None:
    bobs = point("bob", 1)
    await store.upsert("things", [bobs, point("alice", 2)])

    await store.delete("things", where={"user_id": "alice"}, ids=[bobs.id])

    assert await store.count("things", where={"user_id": "bob"}) == 1
    assert await store.count("things", where={"user_id": "alice"}, ids=[bobs.id]) == 0


async def test_deleting_by_a_field_keeps_the_rest(store: VectorStore) -> None:
    await store.upsert(
        "things", [point("alice", 1, group="a"), point("alice", 2, group="b"), point("bob", 3, group="a")]
    )

    await store.delete("things", where={"user_id": "alice", "group": "a"})

    assert await store.count("things", where={"user_id": "alice"}) == 1
    assert await store.count("things", where={"user_id": "bob"}) == 1


async def test_an_upsert_of_the_same_id_replaces_the_point(store: VectorStore) -> None:
    first = point("alice", 1)
    await store.upsert("things", [first])
    await store.upsert("things", [VectorPoint(first.id, vector(2), {**first.payload, "seed": 2})])

    [only] = await store.scroll("things", where={"user_id": "alice"}, limit=10, order_field="at")

    assert (only.id, only.payload["seed"]) == (first.id, 2)


async def test_an_unfiltered_query_is_refused(store: VectorStore) -> None:
    with pytest.raises(ValueError, match="filtered"):
        await store.search("things", vector(1), where={}, limit=1)


async def test_a_collection_that_was_never_opened_is_an_error(store: VectorStore) -> None:
    with pytest.raises(VectorStoreUnavailable):
        await store.upsert("missing", [point("alice", 1)])


async def test_the_embedded_store_keeps_its_points_across_restarts(tmp_path: Path) -> None:
    first = EdgeVectorStore(tmp_path / "vectors")
    await first.ensure_collection(SPEC)
    await first.upsert("things", [point("alice", 1)])
    await first.aclose()

    again = EdgeVectorStore(tmp_path / "vectors")
    try:
        await again.ensure_collection(SPEC)
        assert await again.count("things", where={"user_id": "alice"}) == 1
    finally:
        await again.aclose()
