"""Long-term memories: what users wrote, embedded and kept per user in the vector store.

Memories are only ever made from text a user wrote (their chat messages, without attached resources) or asked to
save; never from tool results, which may carry instructions planted by whoever wrote the data a tool read.
Every operation is scoped to one user by a filter the vector store applies itself.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from orchestrator.embeddings.types import Embedder
from orchestrator.errors import MemoryNotFound
from orchestrator.vectors.types import CollectionSpec, StoredPoint, VectorPoint, VectorStore

MemorySource = Literal["message", "saved"]
MAX_MEMORY_CHARS: Final = 2_000
"""Longer texts are cut; the embedding model reads only about the first 1,000 characters anyway."""
_ID_NAMESPACE: Final = uuid.UUID("6f1c1bd4-4b55-4a43-9a43-8f1d8b1c2d7e")
_SLUG: Final = re.compile(r"[^a-z0-9]+")
_USER: Final = "user_id"
_CONVERSATION: Final = "conversation_id"
_CREATED: Final = "created_at"


@dataclass(frozen=True, slots=True)
class Memory:
    id: str
    text: str
    source: MemorySource
    created_at: datetime
    conversation_id: str | None = None
    score: float | None = None  # similarity to the query, for search results


class Memories:
    """Save, recall, list and delete one user's memories.

    The collection is named after the embedding model, because vectors of different models cannot be compared:
    changing the model starts an empty collection beside the old one.

    Args:
        store: the vector store (opened and closed by its owner).
        embedder: turns texts into vectors.
        collection_prefix: shared by every collection of this deployment.
    """

    def __init__(self, store: VectorStore, embedder: Embedder, *, collection_prefix: str) -> None:
        self._store = store
        self._embedder = embedder
        self._prefix = collection_prefix
        self._collection: str | None = None

    async def save(
        self, user_id: str, text: str, *, source: MemorySource = "saved", conversation_id: str | None = None
    ) -> Memory:
        """Embed and keep ``text``; saving the same text again refreshes it instead of adding a copy.

        Raises:
            ValueError: ``text`` is blank.
            EmbeddingUnavailable, VectorStoreUnavailable.
        """
        text = text.strip()[:MAX_MEMORY_CHARS]
        if not text:
            raise ValueError("a memory needs some text")
        [vector] = await self._embedder.embed([text])
        collection = await self._ready(len(vector))
        memory = Memory(
            id=str(uuid.uuid5(_ID_NAMESPACE, f"{user_id}\0{' '.join(text.lower().split())}")),
            text=text,
            source=source,
            created_at=datetime.now(UTC),
            conversation_id=conversation_id,
        )
        payload: dict[str, Any] = {
            _USER: user_id,
            "text": memory.text,
            "source": source,
            _CREATED: memory.created_at.timestamp(),
        }
        if conversation_id is not None:
            payload[_CONVERSATION] = conversation_id
        await self._store.upsert(collection, [VectorPoint(memory.id, vector.tolist(), payload)])
        return memory

    async def search(self, user_id: str, query: str, *, limit: int, min_score: float | None = None) -> list[Memory]:
        """The user's memories most similar to ``query``, best first.

        Raises: EmbeddingUnavailable, VectorStoreUnavailable.
        """
        [vector] = await self._embedder.embed([query])
        collection = await self._ready(len(vector))
        found = await self._store.search(
            collection, vector.tolist(), where={_USER: user_id}, limit=limit, min_score=min_score
        )
        return [_memory(point) for point in found]

    async def list(self, user_id: str, *, limit: int, before: datetime | None = None) -> list[Memory]:
        """The user's memories, newest first; ``before`` continues a listing after its last memory's time.

        Raises: EmbeddingUnavailable, VectorStoreUnavailable.
        """
        collection = await self._ready()
        found = await self._store.scroll(
            collection,
            where={_USER: user_id},
            limit=limit,
            order_field=_CREATED,
            before=before.timestamp() if before is not None else None,
        )
        return [_memory(point) for point in found]

    async def count(self, user_id: str) -> int:
        """Raises: EmbeddingUnavailable, VectorStoreUnavailable."""
        return await self._store.count(await self._ready(), where={_USER: user_id})

    async def delete(self, user_id: str, memory_id: str) -> None:
        """Raises: MemoryNotFound (also for another user's memory), EmbeddingUnavailable, VectorStoreUnavailable."""
        collection = await self._ready()
        where = {_USER: user_id}
        if not _is_uuid(memory_id) or not await self._store.count(collection, where=where, ids=[memory_id]):
            raise MemoryNotFound(memory_id[:100])
        await self._store.delete(collection, where=where, ids=[memory_id])

    async def forget_all(self, user_id: str) -> None:
        """Delete every memory of the user. Raises: EmbeddingUnavailable, VectorStoreUnavailable."""
        await self._store.delete(await self._ready(), where={_USER: user_id})

    async def forget_conversation(self, user_id: str, conversation_id: str) -> None:
        """Delete the memories made from one conversation's messages.

        Raises: EmbeddingUnavailable, VectorStoreUnavailable.
        """
        await self._store.delete(await self._ready(), where={_USER: user_id, _CONVERSATION: conversation_id})

    async def _ready(self, dimensions: int | None = None) -> str:
        """The collection for the current model, created on first use."""
        if self._collection is not None:
            return self._collection
        if dimensions is None:
            dimensions = len((await self._embedder.embed(["dimensions"]))[0])
        name = f"{self._prefix}-memories-{_SLUG.sub('-', self._embedder.model_id.lower()).strip('-')}-{dimensions}"
        await self._store.ensure_collection(
            CollectionSpec(
                name=name,
                dimensions=dimensions,
                tenant_field=_USER,
                keyword_fields=(_CONVERSATION,),
                order_field=_CREATED,
            )
        )
        self._collection = name
        return name


def _memory(point: StoredPoint) -> Memory:
    payload = point.payload
    conversation = payload.get(_CONVERSATION)
    return Memory(
        id=point.id,
        text=str(payload.get("text", "")),
        source="message" if payload.get("source") == "message" else "saved",
        created_at=datetime.fromtimestamp(float(payload.get(_CREATED, 0.0)), UTC),
        conversation_id=str(conversation) if conversation is not None else None,
        score=point.score,
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
