"""Memory benchmark: the embedded vector store with 100k memories of 100 users, through the VectorStore protocol.

It inserts the memories in batches (their vectors made beforehand, so the store alone is measured), then runs
user-filtered searches (top 8, as a turn does) and prints insert throughput and search p50/p99. For comparison it
runs the same on qdrant-client's local mode, one collection filtered by user and one collection per user, at a
smaller size (that mode scans in Python, so 100k would take many minutes), and times the offline embedding model on
memory-sized texts, which bounds how fast memories can be made from messages.

Targets (embedded default): filtered search p99 <= 20 ms, insert >= 2,000 memories/s.

    python bench/memory.py
    python bench/memory.py --memories 2000 --users 10 --compare-memories 500 --json figures.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from qdrant_client import AsyncQdrantClient

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orchestrator.embeddings.local import DIMENSIONS, LocalEmbedder  # noqa: E402
from orchestrator.vectors.edge import EdgeVectorStore  # noqa: E402
from orchestrator.vectors.qdrant import QdrantVectorStore  # noqa: E402
from orchestrator.vectors.types import CollectionSpec, VectorPoint, VectorStore  # noqa: E402

# qdrant-client's local mode has no payload indexes; it says so on every collection, which this run knows.
warnings.filterwarnings("ignore", "Payload indexes have no effect", UserWarning)

BATCH = 256
TOP_K = 8


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def unit_vectors(count: int, seed: int) -> npt.NDArray[np.float32]:
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def measure(
    name: str, store: VectorStore, collection: Callable[[int], str], memories: int, users: int, searches: int
) -> dict[str, Any]:
    vectors = unit_vectors(memories, seed=1)
    names = {collection(user) for user in range(users)}
    for each in names:
        await store.ensure_collection(
            CollectionSpec(
                each, DIMENSIONS, tenant_field="user_id", keyword_fields=("conversation_id",), order_field="created_at"
            )
        )
    started = time.perf_counter()
    for start in range(0, memories, BATCH):
        batches: dict[str, list[VectorPoint]] = {}
        for index in range(start, min(memories, start + BATCH)):
            user = index % users
            payload = {
                "user_id": f"user-{user}",
                "text": f"memory {index}: something user {user} wrote about their plans",
                "source": "message",
                "created_at": time.time(),
            }
            batches.setdefault(collection(user), []).append(
                VectorPoint(str(uuid.uuid4()), vectors[index].tolist(), payload)
            )
        for each, points in batches.items():
            await store.upsert(each, points)
    insert_seconds = time.perf_counter() - started
    queries = unit_vectors(searches, seed=2)
    timings: list[float] = []
    for index in range(searches):
        user = index % users
        started = time.perf_counter()
        found = await store.search(
            collection(user), queries[index].tolist(), where={"user_id": f"user-{user}"}, limit=TOP_K
        )
        timings.append(time.perf_counter() - started)
        if any(point.payload["user_id"] != f"user-{user}" for point in found):
            raise AssertionError("a filtered search returned another user's memory")
    return {
        "store": name,
        "memories": memories,
        "users": users,
        "inserts_per_second": memories / insert_seconds,
        "search_p50_ms": statistics.median(timings) * 1000,
        "search_p99_ms": percentile(timings, 0.99) * 1000,
    }


async def embedding_rate(texts: int) -> float:
    embedder = LocalEmbedder(threads=1)
    try:
        sample = [f"I usually fly from Lisbon and prefer aisle seats, note number {i}" for i in range(texts)]
        await embedder.embed(sample[:1])
        started = time.perf_counter()
        await embedder.embed(sample)
        return texts / (time.perf_counter() - started)
    finally:
        await embedder.aclose()


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--searches", type=int, default=1_000)
    parser.add_argument("--compare-memories", type=int, default=10_000, help="size of the qdrant-client runs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        edge = EdgeVectorStore(Path(directory) / "edge")
        try:
            rows.append(
                await measure(
                    "qdrant-edge (default)", edge, lambda _: "memories", args.memories, args.users, args.searches
                )
            )
        finally:
            await edge.aclose()
        compare = min(args.compare_memories, args.memories)
        searches = min(args.searches, 200)
        single = QdrantVectorStore(AsyncQdrantClient(path=str(Path(directory) / "local-single")), timeout_seconds=600)
        try:
            rows.append(
                await measure("qdrant-client local", single, lambda _: "memories", compare, args.users, searches)
            )
        finally:
            await single.aclose()
        per_user = QdrantVectorStore(
            AsyncQdrantClient(path=str(Path(directory) / "local-per-user")), timeout_seconds=600
        )
        try:
            rows.append(
                await measure(
                    "qdrant-client local, per user", per_user, lambda user: f"m{user}", compare, args.users, searches
                )
            )
        finally:
            await per_user.aclose()
    rate = await embedding_rate(256)

    print("store                            memories  users   inserts/s   search p50 ms   search p99 ms")
    for row in rows:
        print(
            f"{row['store']:<32} {row['memories']:>8,} {row['users']:>6} {row['inserts_per_second']:>11,.0f} "
            f"{row['search_p50_ms']:>15.2f} {row['search_p99_ms']:>15.2f}"
        )
    print(f"\noffline embedding model (1 thread): {rate:,.0f} memory-sized texts/s")
    default = rows[0]
    search_ok = "ok" if default["search_p99_ms"] <= 20 else "over target"
    insert_ok = "ok" if default["inserts_per_second"] >= 2000 else "under target"
    print(f"\nfiltered search p99 {default['search_p99_ms']:.2f} ms (target <= 20 ms): {search_ok}")
    print(f"insert {default['inserts_per_second']:,.0f}/s (target >= 2,000/s): {insert_ok}")
    if args.json:
        args.json.write_text(json.dumps({"stores": rows, "embeddings_per_second": rate}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
