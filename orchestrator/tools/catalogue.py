"""A tool set ready for retrieval: each tool's text, vector, keywords and encoded definition, built once per set.

``ToolIndex.catalogue(specs)`` returns the same ``ToolCatalogue`` for as long as the tool set is unchanged (the
registry hands out the same spec objects until a server's tools change), so a turn costs one query embedding and
a few array operations. Tool vectors are cached by the tool's text: a re-listed or reconnected server whose tools
did not change costs nothing, a changed tool is embedded again, a removed one simply leaves the next catalogue.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import anyio
import numpy as np

from orchestrator.embeddings.types import Embedder, Vectors
from orchestrator.errors import EmbeddingUnavailable
from orchestrator.llm.tools import ToolDefinitions, tool_definitions
from orchestrator.mcp.types import ToolSpec
from orchestrator.tools.keywords import KeywordIndex, Tokenizer

logger = logging.getLogger(__name__)

EMBEDDING_RETRY_SECONDS: Final = 30.0
"""After the embedder fails, tools are ranked by keywords alone for this long before it is tried again."""
QUERY_EMBEDDING_TIMEOUT_SECONDS: Final = 5.0
"""A turn waits no longer than this for its message's vector (a busy or slow embedder): keywords rank instead."""
_VECTOR_CACHE_LIMIT: Final = 20_000
_CATALOGUES_KEPT: Final = 8
_DEBOUNCE_SECONDS: Final = 0.2
_PARAMETER_DESCRIPTION_CHARS: Final = 200
_WORDS: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def tool_document(spec: ToolSpec) -> str:
    """The text a tool is found by: its words, its server, its description, its parameters and theirs."""
    words = " ".join(_WORDS.findall(spec.tool)).lower()
    parts = [f"{words} ({spec.server_id}): {' '.join(spec.description.split())}"]
    properties = spec.input_schema.get("properties")
    if _is_mapping(properties):
        described: list[str] = []
        for name, schema in properties.items():
            text = " ".join(_WORDS.findall(str(name))).lower()
            if _is_mapping(schema):
                description = schema.get("description")
                if isinstance(description, str) and description.strip():
                    text += f" ({' '.join(description.split())[:_PARAMETER_DESCRIPTION_CHARS]})"
            described.append(text)
        if described:
            parts.append("Parameters: " + "; ".join(described))
    return "\n".join(parts)


def _is_mapping(value: object) -> TypeGuard[Mapping[Any, Any]]:
    return isinstance(value, Mapping)


@dataclass(frozen=True, eq=False)
class ToolCatalogue:
    """One tool set, in the source's order, with what ranking needs. Never mutated.

    ``vectors`` is ``None`` when the embedder was unavailable: tools are then ranked by keywords alone.
    """

    specs: tuple[ToolSpec, ...]
    definitions: ToolDefinitions
    keywords: KeywordIndex
    vectors: Vectors | None
    positions: Mapping[str, int]

    def definitions_of(self, positions: Sequence[int]) -> ToolDefinitions:
        """The encoded definitions of the tools at ``positions`` (in that order), sharing their encoded JSON."""
        return ToolDefinitions(
            [self.definitions[i] for i in positions], [self.definitions.encoded(i) for i in positions]
        )


class ToolIndex:
    """Builds and caches ``ToolCatalogue``s; keyword-only when there is no embedder.

    Args:
        embedder: embeds tool texts and queries; ``None``: keywords alone.
        clock: seconds, for the embedder's retry delay (tests pass a fake).
    """

    def __init__(self, embedder: Embedder | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._embedder = embedder
        self._clock = clock
        self._tokenizer = Tokenizer()
        self._vectors: OrderedDict[str, Vectors] = OrderedDict()  # tool text -> vector
        # A few recent tool sets (when each user has their own tools, several are in use at once), by spec identity.
        self._catalogues: OrderedDict[tuple[int, ...], tuple[tuple[ToolSpec, ...], ToolCatalogue]] = OrderedDict()
        self._lock = anyio.Lock()
        self._failed_at: float | None = None
        self._changed = anyio.Event()

    @property
    def embedder(self) -> Embedder | None:
        return self._embedder

    def tokens(self, text: str) -> list[int]:
        return self._tokenizer.tokens(text)

    async def embed_query(self, text: str) -> Vectors | None:
        """The query's vector, or ``None`` when the embedder is unavailable (then keywords alone rank)."""
        if self._embedder is None or self._resting():
            return None
        try:
            with anyio.fail_after(QUERY_EMBEDDING_TIMEOUT_SECONDS):
                return (await self._embedder.embed([text]))[0]
        except TimeoutError:
            logger.warning(
                "embedding a query took over %gs; ranking tools by keywords", QUERY_EMBEDDING_TIMEOUT_SECONDS
            )
            return None
        except EmbeddingUnavailable as exc:
            self._failed(exc)
            return None

    async def catalogue(self, specs: Sequence[ToolSpec]) -> ToolCatalogue:
        """The catalogue of ``specs``: cached while the same spec objects come back, else built (once)."""
        key = tuple(specs)
        if (cached := self._cached(key)) is not None:
            return cached
        async with self._lock:
            if (cached := self._cached(key)) is not None:
                return cached
            built = await self._build(key)
            self._catalogues[_identity(key)] = (key, built)
            self._catalogues.move_to_end(_identity(key))
            while len(self._catalogues) > _CATALOGUES_KEPT:
                self._catalogues.popitem(last=False)
            return built

    def _cached(self, key: tuple[ToolSpec, ...]) -> ToolCatalogue | None:
        found = self._catalogues.get(_identity(key))
        if found is None or not _same(found[0], key):
            return None
        self._catalogues.move_to_end(_identity(key))
        catalogue = found[1]
        if catalogue.vectors is None and self._embedder is not None and not self._resting() and key:
            return None  # built while the embedder was failing: try it again
        return catalogue

    def changed(self) -> None:
        """The tool set changed (the registry's ``on_change``): the warmer builds the next catalogue."""
        self._changed.set()

    async def keep_warm(self, source: Callable[[], list[ToolSpec]]) -> None:
        """Rebuild the catalogue of ``source()`` whenever :meth:`changed` is called, so no turn waits for it."""
        while True:
            await self._changed.wait()
            await anyio.sleep(_DEBOUNCE_SECONDS)  # servers often change several times in a row at start-up
            self._changed = anyio.Event()
            try:
                await self.catalogue(source())
            except Exception:  # boundary of a background task: a bad tool set must not stop the service
                logger.exception("could not index the tools; turns will index them themselves")

    async def _build(self, specs: tuple[ToolSpec, ...]) -> ToolCatalogue:
        documents = [tool_document(spec) for spec in specs]
        return ToolCatalogue(
            specs=specs,
            definitions=tool_definitions(specs),
            keywords=KeywordIndex([self._tokenizer.tokens(document) for document in documents]),
            vectors=await self._document_vectors(documents),
            positions={spec.name: position for position, spec in enumerate(specs)},
        )

    async def _document_vectors(self, documents: Sequence[str]) -> Vectors | None:
        if self._embedder is None or self._resting():
            return None
        missing = list(dict.fromkeys(document for document in documents if document not in self._vectors))
        if missing:
            started = time.perf_counter()
            try:
                fresh = await self._embedder.embed(missing)
            except EmbeddingUnavailable as exc:
                self._failed(exc)
                return None
            for document, vector in zip(missing, fresh, strict=True):
                self._vectors[document] = vector
            logger.info(
                "embedded %d tool description(s)",
                len(missing),
                extra={"duration_ms": int((time.perf_counter() - started) * 1000)},
            )
        for document in documents:
            self._vectors.move_to_end(document)
        while len(self._vectors) > max(_VECTOR_CACHE_LIMIT, len(documents)):
            self._vectors.popitem(last=False)
        if not documents:
            return None
        return np.stack([self._vectors[document] for document in documents])

    def _resting(self) -> bool:
        return self._failed_at is not None and self._clock() - self._failed_at < EMBEDDING_RETRY_SECONDS

    def _failed(self, exc: EmbeddingUnavailable) -> None:
        self._failed_at = self._clock()
        logger.warning("tool retrieval uses keywords only for %gs: %s", EMBEDDING_RETRY_SECONDS, exc)


def _identity(specs: tuple[ToolSpec, ...]) -> tuple[int, ...]:
    # ToolSpec holds dicts and cannot be hashed; the specs themselves are kept beside the key, so a recycled id()
    # never matches (see ``_same``).
    return tuple(id(spec) for spec in specs)


def _same(left: tuple[ToolSpec, ...], right: tuple[ToolSpec, ...]) -> bool:
    return len(left) == len(right) and all(a is b for a, b in zip(left, right, strict=True))
