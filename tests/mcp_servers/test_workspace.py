"""The workspace server, driven through a real MCP client over stdio and over streamable HTTP."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncGenerator, Generator
from pathlib import Path

import pytest
from mcp import Client

from mcp_servers.workspace.sandbox import user_directory_name
from tests.mcp_servers.harness import TRANSPORTS, HttpServer, call, http_server, ok, shared_client

MODULE = "mcp_servers.workspace"
MAX_FILE_BYTES = 2_000
MAX_ENTRIES = 12


@pytest.fixture(scope="module")
def workspace_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workspace")


@pytest.fixture(scope="module")
def workspace_env(workspace_root: Path) -> dict[str, str]:
    return {
        "WORKSPACE_ROOT": str(workspace_root),
        "WORKSPACE_MAX_FILE_BYTES": str(MAX_FILE_BYTES),
        "WORKSPACE_MAX_ENTRIES_PER_USER": str(MAX_ENTRIES),
    }


@pytest.fixture(scope="module")
def workspace_http(workspace_env: dict[str, str]) -> Generator[HttpServer]:
    with http_server(MODULE, workspace_env) as server:
        yield server


@pytest.fixture(scope="module", params=TRANSPORTS)
async def workspace(request: pytest.FixtureRequest, workspace_env: dict[str, str]) -> AsyncGenerator[Client]:
    async with shared_client(request, MODULE, workspace_env, "workspace_http") as client:
        yield client


@pytest.fixture
def home(workspace_root: Path, user: str) -> Path:
    """The test user's own folder, as the server names it."""
    folder = workspace_root / user_directory_name(user)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the workspace, holding a secret no user may reach."""
    (tmp_path / "secret.txt").write_text("top secret\n")
    return tmp_path


def contents(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in folder.iterdir()}


async def write(client: Client, user: str, path: str, content: str) -> None:
    await ok(client, "write_file", {"path": path, "content": content}, user=user)


async def test_tools_are_listed_with_accurate_annotations(workspace: Client) -> None:
    tools = {tool.name: tool for tool in (await workspace.list_tools()).tools}
    hints = {name: tool.annotations for name, tool in tools.items()}

    assert set(tools) == {
        "list_files",
        "read_file",
        "write_file",
        "append_file",
        "delete_file",
        "make_directory",
        "move_file",
        "search_files",
    }
    assert all(hint is not None and hint.open_world_hint is False for hint in hints.values())
    assert {name for name, hint in hints.items() if hint and hint.read_only_hint} == {
        "list_files",
        "read_file",
        "search_files",
    }
    assert {name for name, hint in hints.items() if hint and hint.destructive_hint} == {
        "write_file",
        "delete_file",
        "move_file",
    }
    assert all(tool.description for tool in tools.values())


async def test_a_written_file_reads_back_and_a_second_write_replaces_it(workspace: Client, user: str) -> None:
    first = await ok(workspace, "write_file", {"path": "docs/plan.md", "content": "# Plan\nv1\n"}, user=user)
    second = await ok(workspace, "write_file", {"path": "docs/plan.md", "content": "# Plan\nv2\n"}, user=user)

    read = await ok(workspace, "read_file", {"path": "docs/plan.md"}, user=user)

    assert (first["created"], second["created"]) == (True, False)
    assert read["content"] == "# Plan\nv2\n"
    assert (read["first_line"], read["last_line"], read["total_lines"], read["next_offset"]) == (1, 2, 2, None)


async def test_files_are_stored_in_the_users_folder_under_workspace_root(
    workspace: Client, user: str, home: Path
) -> None:
    await write(workspace, user, "kept.txt", "here")

    assert (home / "kept.txt").read_text() == "here"


async def test_append_creates_a_file_then_adds_to_its_end(workspace: Client, user: str) -> None:
    created = await ok(workspace, "append_file", {"path": "log.txt", "content": "one\n"}, user=user)
    extended = await ok(workspace, "append_file", {"path": "log.txt", "content": "two\n"}, user=user)

    read = await ok(workspace, "read_file", {"path": "log.txt"}, user=user)

    assert (created["created"], extended["created"], extended["size"]) == (True, False, 8)
    assert read["content"] == "one\ntwo\n"


async def test_a_long_file_is_read_in_pages(workspace: Client, user: str) -> None:
    await write(workspace, user, "long.txt", "".join(f"line {n}\n" for n in range(1, 31)))

    first = await ok(workspace, "read_file", {"path": "long.txt", "limit": 10}, user=user)
    rest = await ok(workspace, "read_file", {"path": "long.txt", "offset": first["next_offset"]}, user=user)
    past_the_end = await call(workspace, "read_file", {"path": "long.txt", "offset": 31}, user=user)

    assert (first["first_line"], first["last_line"], first["next_offset"]) == (1, 10, 10)
    assert first["content"].startswith("line 1\n")
    assert (rest["first_line"], rest["last_line"], rest["next_offset"]) == (11, 30, None)
    assert rest["content"].startswith("line 11\n")
    assert past_the_end.is_error


async def test_listing_shows_files_and_folders(workspace: Client, user: str) -> None:
    await write(workspace, user, "a/b.txt", "b")
    await write(workspace, user, "c.txt", "cc")

    top = await ok(workspace, "list_files", {}, user=user)
    everything = await ok(workspace, "list_files", {"path": ".", "recursive": True}, user=user)
    inside = await ok(workspace, "list_files", {"path": "a"}, user=user)

    assert [(entry["path"], entry["type"], entry["size"]) for entry in top["entries"]] == [
        ("a", "directory", None),
        ("c.txt", "file", 2),
    ]
    assert [entry["path"] for entry in everything["entries"]] == ["a", "a/b.txt", "c.txt"]
    assert [entry["path"] for entry in inside["entries"]] == ["a/b.txt"]
    assert (await call(workspace, "list_files", {"path": "missing"}, user=user)).is_error
    assert (await call(workspace, "list_files", {"path": "c.txt"}, user=user)).is_error


async def test_making_a_directory_twice_is_harmless(workspace: Client, user: str) -> None:
    made = await ok(workspace, "make_directory", {"path": "x/y"}, user=user)
    again = await ok(workspace, "make_directory", {"path": "x/y"}, user=user)

    assert (made["created"], again["created"]) == (True, False)


async def test_move_renames_and_replaces_an_existing_file_only_when_asked(workspace: Client, user: str) -> None:
    await write(workspace, user, "draft.txt", "new")
    await write(workspace, user, "final/report.txt", "old")

    refused = await call(workspace, "move_file", {"source": "draft.txt", "destination": "final/report.txt"}, user=user)
    moved = await ok(
        workspace,
        "move_file",
        {"source": "draft.txt", "destination": "final/report.txt", "overwrite": True},
        user=user,
    )

    assert refused.is_error
    assert moved == {"source": "draft.txt", "destination": "final/report.txt"}
    assert (await ok(workspace, "read_file", {"path": "final/report.txt"}, user=user))["content"] == "new"
    assert (await call(workspace, "read_file", {"path": "draft.txt"}, user=user)).is_error


async def test_a_folder_cannot_be_moved_into_itself(workspace: Client, user: str) -> None:
    await write(workspace, user, "box/item.txt", "x")

    result = await call(workspace, "move_file", {"source": "box", "destination": "box/inner"}, user=user)

    assert result.is_error


async def test_delete_removes_files_and_empty_folders_but_not_full_ones(workspace: Client, user: str) -> None:
    await write(workspace, user, "full/file.txt", "x")
    await ok(workspace, "make_directory", {"path": "empty"}, user=user)

    full = await call(workspace, "delete_file", {"path": "full"}, user=user)
    await ok(workspace, "delete_file", {"path": "full/file.txt"}, user=user)
    await ok(workspace, "delete_file", {"path": "empty"}, user=user)
    missing = await call(workspace, "delete_file", {"path": "full/file.txt"}, user=user)

    assert full.is_error
    assert missing.is_error
    assert [entry["path"] for entry in (await ok(workspace, "list_files", {}, user=user))["entries"]] == ["full"]


async def test_search_finds_lines_in_files_matching_the_glob(workspace: Client, user: str) -> None:
    await write(workspace, user, "notes/a.md", "intro\nThe TODO list\n")
    await write(workspace, user, "notes/b.txt", "todo: call Bob\n")
    await write(workspace, user, "c.md", "nothing to do\n")

    everywhere = await ok(workspace, "search_files", {"pattern": "todo"}, user=user)
    markdown = await ok(workspace, "search_files", {"pattern": "todo", "glob": "*.md"}, user=user)
    exact_case = await ok(workspace, "search_files", {"pattern": "TODO", "ignore_case": False}, user=user)
    by_regex = await ok(workspace, "search_files", {"pattern": r"call \w+$", "regex": True}, user=user)
    bounded = await ok(workspace, "search_files", {"pattern": "o", "limit": 2}, user=user)

    assert [(m["path"], m["line"]) for m in everywhere["matches"]] == [("notes/a.md", 2), ("notes/b.txt", 1)]
    assert [m["path"] for m in markdown["matches"]] == ["notes/a.md"]
    assert [m["text"] for m in exact_case["matches"]] == ["The TODO list"]
    assert [m["path"] for m in by_regex["matches"]] == ["notes/b.txt"]
    assert (len(bounded["matches"]), bounded["truncated"]) == (2, True)


async def test_an_invalid_regular_expression_is_an_error(workspace: Client, user: str) -> None:
    assert (await call(workspace, "search_files", {"pattern": "(unclosed", "regex": True}, user=user)).is_error


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "a/../../escape.txt", "..", "/tmp/escape.txt", "~/escape.txt", "nul\x00byte.txt", "a\\b.txt"],
)
@pytest.mark.parametrize("tool", ["read_file", "write_file", "append_file", "delete_file", "make_directory"])
async def test_paths_that_leave_the_sandbox_are_refused(
    workspace: Client, user: str, workspace_root: Path, tool: str, path: str
) -> None:
    arguments = {"path": path, "content": "x"} if tool in ("write_file", "append_file") else {"path": path}

    result = await call(workspace, tool, arguments, user=user)

    assert result.is_error
    assert not (workspace_root / "escape.txt").exists()
    assert not (workspace_root.parent / "escape.txt").exists()


async def test_symbolic_links_leading_outside_are_refused(
    workspace: Client, user: str, home: Path, outside: Path
) -> None:
    (home / "door").symlink_to(outside, target_is_directory=True)
    (home / "peek.txt").symlink_to(outside / "secret.txt")
    await write(workspace, user, "mine.txt", "mine")

    attempts = [
        await call(workspace, "read_file", {"path": "door/secret.txt"}, user=user),
        await call(workspace, "read_file", {"path": "peek.txt"}, user=user),
        await call(workspace, "write_file", {"path": "door/planted.txt", "content": "x"}, user=user),
        await call(workspace, "write_file", {"path": "peek.txt", "content": "overwritten"}, user=user),
        await call(workspace, "list_files", {"path": "door"}, user=user),
        await call(workspace, "delete_file", {"path": "peek.txt"}, user=user),
        await call(workspace, "move_file", {"source": "mine.txt", "destination": "door/mine.txt"}, user=user),
    ]
    listing = await ok(workspace, "list_files", {"recursive": True}, user=user)
    search = await ok(workspace, "search_files", {"pattern": "secret"}, user=user)

    assert all(result.is_error for result in attempts)
    assert contents(outside) == {"secret.txt": "top secret\n"}
    assert [entry["path"] for entry in listing["entries"]] == ["mine.txt"]
    assert search["matches"] == []


async def test_binary_files_are_reported_not_dumped(workspace: Client, user: str, home: Path) -> None:
    (home / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00secret")

    result = await call(workspace, "read_file", {"path": "image.png"}, user=user)
    search = await ok(workspace, "search_files", {"pattern": "secret"}, user=user)

    assert result.is_error
    assert search["matches"] == []


async def test_files_cannot_grow_past_the_size_limit(workspace: Client, user: str) -> None:
    too_big = await call(workspace, "write_file", {"path": "big.txt", "content": "x" * (MAX_FILE_BYTES + 1)}, user=user)
    await write(workspace, user, "full.txt", "x" * MAX_FILE_BYTES)
    overflow = await call(workspace, "append_file", {"path": "full.txt", "content": "x"}, user=user)

    assert too_big.is_error
    assert overflow.is_error


async def test_a_workspace_holds_at_most_the_configured_number_of_entries(workspace: Client, user: str) -> None:
    for n in range(MAX_ENTRIES):
        await write(workspace, user, f"file-{n}.txt", "x")

    one_more = await call(workspace, "write_file", {"path": "one-more.txt", "content": "x"}, user=user)
    replaced = await call(workspace, "write_file", {"path": "file-0.txt", "content": "still fine"}, user=user)

    assert one_more.is_error
    assert not replaced.is_error


async def test_users_have_separate_workspaces(workspace: Client, user: str, other_user: str) -> None:
    await write(workspace, user, "diary.txt", "dear diary")

    theirs = await ok(workspace, "list_files", {}, user=other_user)
    peek = await call(workspace, "read_file", {"path": "diary.txt"}, user=other_user)
    search = await ok(workspace, "search_files", {"pattern": "diary"}, user=other_user)

    assert theirs["entries"] == []
    assert peek.is_error
    assert search["matches"] == []


@pytest.mark.parametrize("user_id", ["../../etc", "/", "", ".", "Bob", "bob", "ユーザー", "a" * 300])
def test_user_ids_become_safe_directory_names(user_id: str) -> None:
    name = user_directory_name(user_id)

    assert re.fullmatch(r"[a-z0-9_-]{1,64}", name)
    assert name not in (".", "..")


def test_user_ids_that_look_alike_get_different_directories() -> None:
    names = {user_directory_name(user_id) for user_id in ["Bob", "bob", "bob!", "bob?", "b/ob"]}

    assert len(names) == 5


def test_user_directory_is_inside_the_root_for_hostile_ids(tmp_path: Path) -> None:
    for user_id in ["../x", "..", "/etc", "a/../../b"]:
        assert (tmp_path / user_directory_name(user_id)).resolve().parent == tmp_path.resolve()
    assert os.sep not in user_directory_name("a/b")
