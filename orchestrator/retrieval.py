"""Builds the retrieval side of the service from settings: embedder, vector store, memories, tool selection."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio
from qdrant_client import AsyncQdrantClient

from orchestrator.embeddings.cached import CachedEmbedder
from orchestrator.embeddings.local import LocalEmbedder
from orchestrator.embeddings.openai_embedder import OpenAIEmbedder
from orchestrator.embeddings.types import Embedder
from orchestrator.mcp.types import ToolSpec
from orchestrator.memory.memories import Memories
from orchestrator.memory.recall import MemoryRecall
from orchestrator.settings import Settings
from orchestrator.tools.catalogue import ToolIndex
from orchestrator.tools.selection import SelectionPolicy, ToolSelector
from orchestrator.vectors.edge import EdgeVectorStore
from orchestrator.vectors.qdrant import QdrantVectorStore
from orchestrator.vectors.types import VectorStore


@dataclass
class Retrieval:
    """The long-lived retrieval parts; ``memories`` and ``recall`` are ``None`` when memory is turned off."""

    selector: ToolSelector
    memories: Memories | None
    recall: MemoryRecall | None
    embedder: Embedder | None

    def watch_tools(self) -> Callable[[], None]:
        """The registry's ``on_change``: the tool catalogue is rebuilt in the background."""
        return self.selector.index.changed


def build_embedder(settings: Settings) -> Embedder:
    if settings.resolved_embeddings_provider == "local":
        return CachedEmbedder(LocalEmbedder(threads=settings.embeddings_threads))
    key = settings.embeddings_api_key or settings.openai_api_key
    return CachedEmbedder(
        OpenAIEmbedder(
            api_key=key.get_secret_value() if key else "not-needed",
            base_url=settings.embeddings_base_url or settings.openai_base_url,
            model=settings.embeddings_model,
            dimensions=settings.embeddings_dimensions,
            timeout_seconds=settings.embeddings_timeout_seconds,
        )
    )


def build_vector_store(settings: Settings) -> VectorStore:
    """A Qdrant server when ``VECTOR_DB_URL`` is set, else Qdrant Edge in ``DATA_DIR/vectors``."""
    if settings.vector_db_url:
        client = AsyncQdrantClient(
            url=settings.vector_db_url,
            api_key=settings.vector_db_api_key.get_secret_value() if settings.vector_db_api_key else None,
            timeout=max(1, round(settings.vector_db_timeout_seconds)),
            check_compatibility=False,  # a blocking request at construction; a version mismatch shows in errors
        )
        return QdrantVectorStore(client, timeout_seconds=settings.vector_db_timeout_seconds)
    return EdgeVectorStore(settings.data_dir / "vectors", timeout_seconds=settings.vector_db_timeout_seconds)


@asynccontextmanager
async def open_retrieval(settings: Settings) -> AsyncGenerator[Retrieval]:
    """Open what memory and tool retrieval need (nothing when both are off); close it in reverse."""
    async with AsyncExitStack() as stack:
        embedder: Embedder | None = None
        if settings.memory_enabled or settings.tool_retrieval_enabled:
            embedder = build_embedder(settings)
            stack.push_async_callback(embedder.aclose)
        memories: Memories | None = None
        recall: MemoryRecall | None = None
        if settings.memory_enabled and embedder is not None:
            store = build_vector_store(settings)
            stack.push_async_callback(store.aclose)
            memories = Memories(store, embedder, collection_prefix=settings.vector_db_collection_prefix)
            recall = MemoryRecall(
                memories,
                top_k=settings.memory_top_k,
                min_score=settings.memory_min_score,
                token_budget=settings.memory_token_budget,
                from_messages=settings.memory_from_messages,
                timeout_seconds=settings.vector_db_timeout_seconds,
            )
        policy = SelectionPolicy(
            enabled=settings.tool_retrieval_enabled,
            top_k=settings.tool_retrieval_top_k,
            min_tools=settings.tool_retrieval_min_tools,
            pinned=tuple(settings.tool_retrieval_pinned),
        )
        selector = ToolSelector(ToolIndex(embedder if settings.tool_retrieval_enabled else None), policy)
        yield Retrieval(selector, memories, recall, embedder)


@asynccontextmanager
async def tools_kept_warm(selector: ToolSelector, source: Callable[[], list[ToolSpec]]) -> AsyncGenerator[None]:
    """Rebuild the tool catalogue in the background whenever the tools change, until the block ends."""
    async with anyio.create_task_group() as group:
        group.start_soon(selector.keep_warm, source, name="tool-catalogue")
        try:
            yield
        finally:
            group.cancel_scope.cancel()
