"""Which tools the model is offered on each step of a turn, and the built-in ``search_tools`` that offers more.

With many tools, a turn offers the model its pinned tools, the tools this conversation used lately, and the
``top_k`` tools that best match the user's message (hybrid: embedding similarity plus BM25 keywords). When those
miss, the model calls ``search_tools``; what it finds is offered on the following steps of the turn.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from orchestrator.embeddings.types import Vectors
from orchestrator.errors import ToolArgumentsInvalid
from orchestrator.llm.tools import ToolDefinitions, tool_definitions
from orchestrator.mcp.contents import without_attachments
from orchestrator.mcp.types import ToolOutput, ToolSpec
from orchestrator.memory.types import MessageRecord
from orchestrator.tools.catalogue import ToolCatalogue, ToolIndex

SEARCH_TOOLS: Final = "search_tools"
"""The built-in tool's name; MCP tools are always ``<server>__<tool>``, so it can never clash with one."""
SEARCH_DEFAULT_LIMIT: Final = 5
SEARCH_MAX_LIMIT: Final = 20
DENSE_WEIGHT: Final = 0.7
"""How much embedding similarity counts against keywords in the hybrid score (chosen with bench/tools.py)."""
RECENT_MESSAGES: Final = 12
"""How far back in the conversation the tools it used stay offered."""
SHORT_QUERY_WORDS: Final = 6
"""A message this short ("yes, do that") is searched together with the user's previous message."""
_DESCRIPTION_CHARS: Final = 200

SEARCH_TOOLS_DEFINITION: Final = ToolDefinitions.encode(
    [
        {
            "type": "function",
            "function": {
                "name": SEARCH_TOOLS,
                "description": "Find more tools. Only the tools that best match the user's request are offered at "
                "first; when none of them can do what is needed, describe the task here. The tools found can be "
                "called from your next step on.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "query": {
                            "type": "string",
                            "description": "what the tool should do, e.g. 'create a calendar event'",
                        },
                        "limit": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": SEARCH_MAX_LIMIT,
                            "description": f"how many tools to add (default {SEARCH_DEFAULT_LIMIT})",
                        },
                    },
                    "required": ["query"],
                },
            },
        }
    ]
)


@dataclass(frozen=True, slots=True)
class SelectionPolicy:
    """Attributes:
    enabled: select tools at all (off: every tool on every step).
    top_k: tools selected by retrieval per turn, besides pinned, recent and searched ones.
    min_tools: with this many tools or fewer, every tool is offered.
    pinned: exposed tool names, or glob patterns such as ``notes__*``, always offered.
    """

    enabled: bool = True
    top_k: int = 10
    min_tools: int = 20
    pinned: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OfferedTools:
    definitions: ToolDefinitions
    specs: Mapping[str, ToolSpec]
    """The offered MCP tools by exposed name (the built-in ``search_tools`` is not among them)."""


class ToolSelector:
    """Selects each turn's tools from whatever tool list it is given (all tools, or one user's)."""

    def __init__(self, index: ToolIndex, policy: SelectionPolicy) -> None:
        self.index = index
        self.policy = policy

    def retrieves(self, tool_count: int) -> bool:
        return self.policy.enabled and tool_count > self.policy.min_tools

    def pinned(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.policy.pinned)

    def for_turn(self, history: Sequence[MessageRecord], message: MessageRecord) -> TurnTools:
        """The tools of one turn, chosen for ``message`` in the light of the conversation so far."""
        query = without_attachments(message.content)
        if len(query.split()) < SHORT_QUERY_WORDS:
            previous = next((record for record in reversed(history) if record.role == "user"), None)
            if previous is not None:
                query = f"{without_attachments(previous.content)}\n{query}"
        recent = {call.name for record in history[-RECENT_MESSAGES:] for call in record.tool_calls}
        return TurnTools(self, query, recent)

    async def keep_warm(self, source: Callable[[], list[ToolSpec]]) -> None:
        """Build the catalogue of ``source()`` whenever the tool set changes, when it will be needed."""

        def wanted() -> list[ToolSpec]:
            tools = source()
            return tools if self.retrieves(len(tools)) else []

        await self.index.keep_warm(wanted)


@dataclass
class TurnTools:
    """One turn's selection: the retrieved tools are chosen on its first step; ``search_tools`` adds to them."""

    selector: ToolSelector
    query: str
    recent: set[str]
    found: set[str] = field(default_factory=set[str])
    _vector: Vectors | None = field(default=None, init=False)
    _embedded: bool = field(default=False, init=False)
    _ranked: tuple[ToolCatalogue, npt.NDArray[np.intp]] | None = field(default=None, init=False)
    _searchable: bool = field(default=False, init=False)

    async def offer(self, specs: Sequence[ToolSpec]) -> OfferedTools:
        """The tools for the next model step."""
        if not self.selector.retrieves(len(specs)):
            self._searchable = False
            return OfferedTools(tool_definitions(specs), {spec.name: spec for spec in specs})
        catalogue = await self.selector.index.catalogue(specs)
        ranked = await self._ranking(catalogue)
        chosen = {
            position
            for position, spec in enumerate(catalogue.specs)
            if spec.name in self.recent or spec.name in self.found or self.selector.pinned(spec.name)
        }
        chosen.update(int(position) for position in ranked[: self.selector.policy.top_k])
        positions = sorted(chosen)  # the source's order: the same selection always encodes the same
        self._searchable = len(positions) < len(catalogue.specs)
        definitions = catalogue.definitions_of(positions)
        if self._searchable:
            definitions = definitions + SEARCH_TOOLS_DEFINITION
        return OfferedTools(definitions, {catalogue.specs[i].name: catalogue.specs[i] for i in positions})

    def handles(self, name: str) -> bool:
        """Whether ``name`` is the built-in ``search_tools`` offered on this turn."""
        return name == SEARCH_TOOLS and self._searchable

    async def call(self, name: str, arguments: Mapping[str, Any], specs: Sequence[ToolSpec]) -> ToolOutput:
        """Run ``search_tools``: rank ``specs`` for the model's query; the best ones are offered from now on.

        Raises:
            ToolArgumentsInvalid: no ``query`` text, or a ``limit`` that is not a whole number.
        """
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolArgumentsInvalid(name, "'query' must be a non-empty string")
        limit = arguments.get("limit", SEARCH_DEFAULT_LIMIT)
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise ToolArgumentsInvalid(name, "'limit' must be an integer")
        limit = max(1, min(SEARCH_MAX_LIMIT, limit))
        catalogue = await self.selector.index.catalogue(specs)
        vector = await self.selector.index.embed_query(query)
        order = rank(catalogue, vector, self.selector.index.tokens(query))
        added: list[ToolSpec] = []
        for position in order:
            spec = catalogue.specs[int(position)]
            if spec.name not in self.found:
                added.append(spec)
                self.found.add(spec.name)
            if len(added) == limit:
                break
        if not added:
            return ToolOutput(text=f"No other tools match {query!r}.", is_error=False)
        lines = [f"- {spec.name}: {_short(spec.description)}" for spec in added]
        return ToolOutput(text="These tools can be called from your next step on:\n" + "\n".join(lines), is_error=False)

    async def _ranking(self, catalogue: ToolCatalogue) -> npt.NDArray[np.intp]:
        if self._ranked is not None and self._ranked[0] is catalogue:
            return self._ranked[1]
        if not self._embedded:
            self._vector = await self.selector.index.embed_query(self.query)
            self._embedded = True
        order = rank(catalogue, self._vector, self.selector.index.tokens(self.query))
        self._ranked = (catalogue, order)
        return order


def rank(
    catalogue: ToolCatalogue, vector: Vectors | None, tokens: Sequence[int], *, dense_weight: float = DENSE_WEIGHT
) -> npt.NDArray[np.intp]:
    """Positions of the catalogue's tools, best match first.

    The hybrid score is ``dense_weight`` times the cosine similarity (rescaled to 0..1 over the catalogue) plus the
    rest times the BM25 score (divided by the best one). Without vectors, keywords alone rank.
    """
    keyword = catalogue.keywords.scores(tokens)
    best = float(keyword.max()) if keyword.size else 0.0
    score = keyword / best if best > 0 else keyword
    if vector is not None and catalogue.vectors is not None and len(catalogue.specs):
        dense = catalogue.vectors @ vector
        low, high = float(dense.min()), float(dense.max())
        dense = (dense - low) / (high - low) if high > low else np.zeros_like(dense)
        score = dense_weight * dense + (1 - dense_weight) * score
    return np.argsort(-score, kind="stable")


def _short(description: str) -> str:
    text = " ".join(description.split())
    return text if len(text) <= _DESCRIPTION_CHARS else text[: _DESCRIPTION_CHARS - 1].rstrip() + "…"
