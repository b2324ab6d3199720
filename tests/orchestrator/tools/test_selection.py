"""Choosing a turn's tools: BM25 keywords, the hybrid ranking on the real offline model, pinned and found tools."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import pytest

from orchestrator.embeddings.local import LocalEmbedder
from orchestrator.errors import ToolArgumentsInvalid
from orchestrator.mcp.types import ToolSpec
from orchestrator.memory.types import MessageRecord, ToolCallRecord
from orchestrator.tools.catalogue import ToolIndex, tool_document
from orchestrator.tools.keywords import KeywordIndex, Tokenizer
from orchestrator.tools.selection import SEARCH_TOOLS, SelectionPolicy, ToolSelector

CATALOGUE = {
    "github": {
        "create_issue": "Create a new issue in a GitHub repository",
        "list_pull_requests": "List pull requests of a repository, optionally filtered by state",
        "merge_pull_request": "Merge a pull request",
    },
    "slack": {
        "post_message": "Post a message to a Slack channel",
        "list_channels": "List the channels of the Slack workspace",
    },
    "calendar": {
        "create_event": "Create an event in the user's calendar with a title, start and end time",
        "list_events": "List upcoming calendar events",
    },
    "weather": {"forecast": "Get the weather forecast for a city"},
    "files": {
        "read_file": "Read the contents of a file",
        "write_file": "Write text to a file, replacing it",
        "search_files": "Find files whose names match a pattern",
    },
    "postgres": {"query": "Run a read-only SQL query against the database"},
}


def make_specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            name=f"{server}__{tool}",
            server_id=server,
            tool=tool,
            description=description,
            input_schema={"type": "object", "properties": {"value": {"type": "string", "description": "input"}}},
        )
        for server, tools in CATALOGUE.items()
        for tool, description in tools.items()
    ]


def message(content: str, role: str = "user", calls: tuple[str, ...] = ()) -> MessageRecord:
    return MessageRecord(
        id=content,
        conversation_id="c",
        seq=0,
        role="user" if role == "user" else "assistant",
        content=content,
        status="complete",
        created_at=datetime.now(UTC),
        tool_calls=[ToolCallRecord(f"call-{name}", name, "{}") for name in calls],
    )


@pytest.fixture(scope="module")
async def index() -> AsyncGenerator[ToolIndex]:
    embedder = LocalEmbedder()
    yield ToolIndex(embedder)
    await embedder.aclose()


def selector(index: ToolIndex, *, pinned: tuple[str, ...] = ()) -> ToolSelector:
    return ToolSelector(index, SelectionPolicy(top_k=2, min_tools=3, pinned=pinned))


def test_tool_names_are_split_into_words_and_stemmed_alike() -> None:
    tokenizer = Tokenizer()

    assert tokenizer.tokens("list_pull_requests") == tokenizer.tokens("listPullRequests")
    assert tokenizer.tokens("listing requests") == tokenizer.tokens("list request")
    assert tokenizer.tokens("the of and") == []


def test_bm25_ranks_the_document_with_the_rare_query_word_first() -> None:
    tokenizer = Tokenizer()
    documents = ["read a file", "write a file", "forecast the weather for a city", "read the calendar"]
    keywords = KeywordIndex([tokenizer.tokens(document) for document in documents])

    scores = keywords.scores(tokenizer.tokens("weather in a city"))

    assert int(scores.argmax()) == 2
    assert scores[0] == 0
    assert scores[1] == 0


def test_a_tool_document_holds_its_words_server_description_and_parameters() -> None:
    spec = make_specs()[1]

    document = tool_document(spec)

    assert document.startswith("list pull requests (github): List pull requests")
    assert "value (input)" in document


async def test_a_turn_offers_the_best_matching_tools_and_search_tools(index: ToolIndex) -> None:
    specs = make_specs()
    turn = selector(index).for_turn([], message("Will it rain in Berlin tomorrow?"))

    offered = await turn.offer(specs)

    names = [definition["function"]["name"] for definition in offered.definitions]
    assert "weather__forecast" in names
    assert names[-1] == SEARCH_TOOLS
    assert len(offered.specs) == 2
    assert turn.handles(SEARCH_TOOLS)


async def test_pinned_and_recently_used_tools_are_always_offered(index: ToolIndex) -> None:
    specs = make_specs()
    history = [message("merge it", role="assistant", calls=("github__merge_pull_request",))]
    turn = selector(index, pinned=("files__*",)).for_turn(history, message("Will it rain in Berlin tomorrow?"))

    offered = await turn.offer(specs)

    assert {"files__read_file", "files__write_file", "files__search_files", "github__merge_pull_request"} <= set(
        offered.specs
    )


async def test_search_tools_adds_what_it_finds_to_the_following_steps(index: ToolIndex) -> None:
    specs = make_specs()
    turn = selector(index).for_turn([], message("Will it rain in Berlin tomorrow?"))
    await turn.offer(specs)

    output = await turn.call(SEARCH_TOOLS, {"query": "open a bug report on github", "limit": 1}, specs)
    offered = await turn.offer(specs)

    assert "github__create_issue" in output.text
    assert "github__create_issue" in offered.specs


async def test_search_tools_refuses_a_missing_query(index: ToolIndex) -> None:
    turn = selector(index).for_turn([], message("hello there my friend, how are you"))

    with pytest.raises(ToolArgumentsInvalid):
        await turn.call(SEARCH_TOOLS, {"limit": 3}, make_specs())


async def test_few_tools_are_all_offered_without_search_tools(index: ToolIndex) -> None:
    specs = make_specs()[:3]
    turn = selector(index).for_turn([], message("Will it rain in Berlin tomorrow?"))

    offered = await turn.offer(specs)

    assert [definition["function"]["name"] for definition in offered.definitions] == [spec.name for spec in specs]
    assert not turn.handles(SEARCH_TOOLS)


async def test_the_catalogue_is_rebuilt_when_the_tools_change_and_removed_tools_disappear(index: ToolIndex) -> None:
    specs = make_specs()
    first = await index.catalogue(specs)
    assert await index.catalogue(list(specs)) is first

    fewer = [spec for spec in specs if spec.server_id != "weather"]
    second = await index.catalogue(fewer)
    turn = selector(index).for_turn([], message("Will it rain in Berlin tomorrow?"))
    offered = await turn.offer(fewer)

    assert second is not first
    assert "weather__forecast" not in second.positions
    assert "weather__forecast" not in offered.specs


async def test_without_embeddings_keywords_alone_rank() -> None:
    turn = selector(ToolIndex(None)).for_turn([], message("weather forecast for Berlin please"))

    offered = await turn.offer(make_specs())

    assert "weather__forecast" in offered.specs


async def test_several_tool_sets_in_use_at_once_keep_their_catalogues(index: ToolIndex) -> None:
    specs = make_specs()
    mine, yours = specs[:10], specs[5:]

    first_mine = await index.catalogue(mine)
    first_yours = await index.catalogue(yours)

    assert await index.catalogue(mine) is first_mine
    assert await index.catalogue(yours) is first_yours
