"""The notes server, driven through a real MCP client over stdio and over streamable HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import httpx2
import pytest
from mcp import Client

from tests.mcp_servers.harness import (
    TRANSPORTS,
    HttpServer,
    call,
    connect_http,
    http_server,
    ok,
    shared_client,
)

MODULE = "mcp_servers.notes"


@pytest.fixture(scope="module")
def notes_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {"NOTES_DB_PATH": str(tmp_path_factory.mktemp("notes") / "notes.db"), "NOTES_MAX_NOTES_PER_USER": "5"}


@pytest.fixture(scope="module")
def notes_http(notes_env: dict[str, str]) -> Iterator[HttpServer]:
    with http_server(MODULE, notes_env) as server:
        yield server


@pytest.fixture(scope="module", params=TRANSPORTS)
async def notes(request: pytest.FixtureRequest, notes_env: dict[str, str]) -> AsyncIterator[Client]:
    async with shared_client(request, MODULE, notes_env, "notes_http") as client:
        yield client


async def add(client: Client, user: str, title: str, body: str = "", tags: list[str] | None = None) -> int:
    note = await ok(client, "add_note", {"title": title, "body": body, "tags": tags or []}, user=user)
    return note["id"]


async def test_tools_are_listed_with_accurate_annotations(notes: Client) -> None:
    tools = {tool.name: tool for tool in (await notes.list_tools()).tools}

    assert set(tools) == {"add_note", "list_notes", "search_notes", "get_note", "update_note", "delete_note"}
    hints = {name: tool.annotations for name, tool in tools.items()}
    assert all(hint is not None and hint.open_world_hint is False for hint in hints.values())
    assert {name for name, hint in hints.items() if hint and hint.read_only_hint} == {
        "list_notes",
        "search_notes",
        "get_note",
    }
    assert {name for name, hint in hints.items() if hint and hint.destructive_hint} == {"update_note", "delete_note"}
    assert all(tool.description for tool in tools.values())


async def test_an_added_note_reads_back_with_normalised_tags(notes: Client, user: str) -> None:
    added = await ok(
        notes, "add_note", {"title": " Groceries ", "body": "eggs", "tags": ["Home", "home ", "shop"]}, user=user
    )

    note = await ok(notes, "get_note", {"id": added["id"]}, user=user)

    assert note == added
    assert (note["title"], note["body"], note["tags"]) == ("Groceries", "eggs", ["home", "shop"])


async def test_notes_are_listed_newest_first_and_filtered_by_tag(notes: Client, user: str) -> None:
    first = await add(notes, user, "first", tags=["work"])
    second = await add(notes, user, "second")
    third = await add(notes, user, "third", tags=["Work"])

    everything = await ok(notes, "list_notes", {}, user=user)
    tagged = await ok(notes, "list_notes", {"tag": "WORK"}, user=user)
    newest = await ok(notes, "list_notes", {"limit": 1}, user=user)

    assert [note["id"] for note in everything["notes"]] == [third, second, first]
    assert [note["id"] for note in tagged["notes"]] == [third, first]
    assert ([note["id"] for note in newest["notes"]], newest["total"]) == ([third], 3)


async def test_search_finds_substrings_of_titles_bodies_and_tags_ignoring_case(notes: Client, user: str) -> None:
    in_title = await add(notes, user, "Straße names")
    in_body = await add(notes, user, "trip", body="Walk down the STRASSE at noon")
    in_tag = await add(notes, user, "misc", tags=["strasse-art"])
    await add(notes, user, "unrelated", body="nothing here")

    found = await ok(notes, "search_notes", {"query": "strasse"}, user=user)

    assert found["notes"][0]["id"] == in_title
    assert {note["id"] for note in found["notes"]} == {in_title, in_body, in_tag}
    assert found["total"] == 3


async def test_update_replaces_only_the_fields_given(notes: Client, user: str) -> None:
    note_id = await add(notes, user, "draft", body="v1", tags=["a"])

    updated = await ok(notes, "update_note", {"id": note_id, "body": "v2"}, user=user)
    retagged = await ok(notes, "update_note", {"id": note_id, "tags": []}, user=user)

    assert (updated["title"], updated["body"], updated["tags"]) == ("draft", "v2", ["a"])
    assert retagged["tags"] == []


async def test_an_update_with_nothing_to_change_is_an_error(notes: Client, user: str) -> None:
    note_id = await add(notes, user, "still")

    assert (await call(notes, "update_note", {"id": note_id}, user=user)).is_error


async def test_a_deleted_note_is_gone(notes: Client, user: str) -> None:
    note_id = await add(notes, user, "temporary")

    await ok(notes, "delete_note", {"id": note_id}, user=user)

    assert (await call(notes, "get_note", {"id": note_id}, user=user)).is_error
    assert (await ok(notes, "list_notes", {}, user=user))["notes"] == []


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("get_note", {"id": 987_654_321}),
        ("update_note", {"id": 987_654_321, "title": "x"}),
        ("delete_note", {"id": 987_654_321}),
    ],
)
async def test_an_unknown_id_is_an_error(notes: Client, user: str, tool: str, arguments: dict[str, object]) -> None:
    result = await call(notes, tool, dict(arguments), user=user)

    assert result.is_error


@pytest.mark.parametrize(
    "arguments",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": "ok", "body": "x" * 100_001},
        {"title": "ok", "tags": [" "]},
        {"title": "ok", "tags": ["t" * 51]},
        {"title": "ok", "tags": [f"t{n}" for n in range(21)]},
    ],
    ids=["empty title", "blank title", "long title", "long body", "blank tag", "long tag", "too many tags"],
)
async def test_bad_input_is_refused(notes: Client, user: str, arguments: dict[str, object]) -> None:
    assert (await call(notes, "add_note", dict(arguments), user=user)).is_error
    assert (await ok(notes, "list_notes", {}, user=user))["total"] == 0


async def test_a_user_cannot_add_more_than_the_configured_number_of_notes(notes: Client, user: str) -> None:
    for n in range(5):
        await add(notes, user, f"note {n}")

    assert (await call(notes, "add_note", {"title": "one too many"}, user=user)).is_error


async def test_users_never_see_each_others_notes(notes: Client, user: str, other_user: str) -> None:
    mine = await add(notes, user, "private plans", tags=["secret"])

    assert (await ok(notes, "list_notes", {}, user=other_user))["notes"] == []
    assert (await ok(notes, "search_notes", {"query": "plans"}, user=other_user))["notes"] == []
    assert (await call(notes, "get_note", {"id": mine}, user=other_user)).is_error
    assert (await call(notes, "update_note", {"id": mine, "title": "mine now"}, user=other_user)).is_error
    assert (await call(notes, "delete_note", {"id": mine}, user=other_user)).is_error
    assert (await ok(notes, "get_note", {"id": mine}, user=user))["title"] == "private plans"


async def test_calls_without_a_user_id_act_as_the_local_user(notes: Client) -> None:
    added = (await notes.call_tool("add_note", {"title": "from a plain MCP client"})).structured_content
    assert added is not None

    seen_as_local = await ok(notes, "get_note", {"id": added["id"]}, user="local")

    assert seen_as_local["title"] == "from a plain MCP client"


async def test_a_user_id_that_is_not_a_string_is_refused(notes: Client) -> None:
    result = await notes.call_tool("list_notes", {}, meta={"mcp-assistant/user-id": 42})

    assert result.is_error


async def test_http_refuses_requests_without_the_right_service_token(notes_http: HttpServer) -> None:
    body: dict[str, object] = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx2.AsyncClient() as http:
        missing = await http.post(notes_http.url, json=body)
        wrong = await http.post(notes_http.url, json=body, headers={"Authorization": "Bearer not-the-token"})
        other_scheme = await http.post(
            notes_http.url, json=body, headers={"Authorization": f"Basic {notes_http.token}"}
        )

    assert [missing.status_code, wrong.status_code, other_scheme.status_code] == [401, 401, 401]


async def test_http_serves_a_client_that_sends_the_service_token(notes_http: HttpServer, user: str) -> None:
    async with connect_http(notes_http.url, notes_http.token) as client:
        tools = await client.list_tools()
        note_id = await add(client, user, "over http")

    assert tools.tools
    assert note_id > 0


async def test_notes_are_stored_where_notes_db_path_points(notes: Client, notes_env: dict[str, str], user: str) -> None:
    await add(notes, user, "persisted")

    assert await anyio.Path(notes_env["NOTES_DB_PATH"]).is_file()
