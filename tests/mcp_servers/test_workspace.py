"""The workspace server, driven through a real MCP client over stdio and over streamable HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

from mcp_servers.workspace.sandbox import user_directory_name
from tests.mcp_servers.harness import TRANSPORTS, HttpServer, call, connect_python, http_server, ok, shared_client

MODULE = "mcp_servers.workspace"
MAX_FILE_BYTES = 2_000
MAX_ENTRIES = 12
SEARCH_TIMEOUT_SECONDS = 0.2
# Bounds a call that must come back promptly, so a server stuck in it fails the test instead of hanging it.
PROMPT_REPLY_SECONDS = 15


@pytest.fixture(scope="module")
def workspace_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workspace")


@pytest.fixture(scope="module")
def server_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The servers' ``$HOME``, so a test can check that ``~`` never leads there."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def workspace_env(workspace_root: Path, server_home: Path) -> dict[str, str]:
    return {
        "HOME": str(server_home),
        "WORKSPACE_ROOT": str(workspace_root),
        "WORKSPACE_MAX_FILE_BYTES": str(MAX_FILE_BYTES),
        "WORKSPACE_MAX_ENTRIES_PER_USER": str(MAX_ENTRIES),
        "WORKSPACE_SEARCH_TIMEOUT_SECONDS": str(SEARCH_TIMEOUT_SECONDS),
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


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


# Paths that leave the user's folder, each with the folder it would land in if the sandbox let it through:
# "root" is WORKSPACE_ROOT (which holds every user's folder), "above" the folder that holds WORKSPACE_ROOT,
# "outside" an unrelated folder (named by absolute path), "home" the server's $HOME.
ESCAPES: dict[str, str] = {
    "../{name}": "root",
    "a/../../{name}": "root",
    "../../{name}": "above",
    "{outside}/{name}": "outside",
    "~/{name}": "home",
}
# The same for folders, as list_files would see them.
FOLDER_ESCAPES: dict[str, str] = {
    "..": "root",
    "a/../..": "root",
    "../..": "above",
    "{outside}": "outside",
    "~": "home",
}
# Globs that would reach those folders if search walked outside the user's folder.
GLOB_ESCAPES = ["../*", "../../*", "*/../*", "**/../**", "{outside}/*", "/*", "~/*"]


@dataclass(frozen=True, slots=True)
class EscapeTargets:
    """The real places escaping paths would name, with a file name no other test uses."""

    name: str
    folders: dict[str, Path]

    def path(self, template: str) -> str:
        return template.format(name=self.name, outside=self.folders["outside"])

    def target(self, folder: str) -> Path:
        return self.folders[folder] / self.name

    def plant(self) -> str:
        """Put a file of this name, with a secret of its own, in every folder an escape could reach."""
        secret = f"secret {self.name}\n"
        for folder in self.folders:
            self.target(folder).write_text(secret)
        return secret


@pytest.fixture
def escapes(workspace_root: Path, server_home: Path, outside: Path) -> EscapeTargets:
    folders = {"root": workspace_root, "above": workspace_root.parent, "outside": outside, "home": server_home}
    return EscapeTargets(name=f"escape-{uuid.uuid4().hex[:12]}.txt", folders=folders)


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


@pytest.mark.parametrize("template", ESCAPES)
@pytest.mark.parametrize("tool", ["write_file", "append_file", "make_directory"])
async def test_paths_that_leave_the_sandbox_create_nothing_there(
    workspace: Client, user: str, escapes: EscapeTargets, tool: str, template: str
) -> None:
    path = escapes.path(template)
    arguments = {"path": path, "content": "x"} if tool in ("write_file", "append_file") else {"path": path}

    result = await call(workspace, tool, arguments, user=user)

    assert result.is_error
    assert not escapes.target(ESCAPES[template]).exists()


@pytest.mark.parametrize("template", ESCAPES)
@pytest.mark.parametrize("tool", ["read_file", "delete_file", "write_file", "append_file"])
async def test_paths_that_leave_the_sandbox_leave_what_is_there_unread_and_unchanged(
    workspace: Client, user: str, escapes: EscapeTargets, tool: str, template: str
) -> None:
    secret = escapes.plant()
    path = escapes.path(template)
    arguments = {"path": path, "content": "x"} if tool in ("write_file", "append_file") else {"path": path}

    result = await call(workspace, tool, arguments, user=user)

    assert result.is_error
    assert secret not in text_of(result)
    assert escapes.target(ESCAPES[template]).read_text() == secret


@pytest.mark.parametrize("template", ESCAPES)
async def test_a_move_cannot_take_a_file_out_of_the_sandbox(
    workspace: Client, user: str, home: Path, escapes: EscapeTargets, template: str
) -> None:
    await write(workspace, user, "mine.txt", "mine")

    result = await call(
        workspace, "move_file", {"source": "mine.txt", "destination": escapes.path(template)}, user=user
    )

    assert result.is_error
    assert not escapes.target(ESCAPES[template]).exists()
    assert contents(home) == {"mine.txt": "mine"}


@pytest.mark.parametrize("template", ESCAPES)
async def test_a_move_cannot_bring_a_file_in_from_outside(
    workspace: Client, user: str, home: Path, escapes: EscapeTargets, template: str
) -> None:
    secret = escapes.plant()

    result = await call(
        workspace, "move_file", {"source": escapes.path(template), "destination": "stolen.txt"}, user=user
    )

    assert result.is_error
    assert escapes.target(ESCAPES[template]).read_text() == secret
    assert contents(home) == {}


@pytest.mark.parametrize("template", FOLDER_ESCAPES)
async def test_folders_outside_the_sandbox_cannot_be_listed(
    workspace: Client, user: str, escapes: EscapeTargets, template: str
) -> None:
    escapes.plant()

    for recursive in (False, True):
        result = await call(
            workspace, "list_files", {"path": escapes.path(template), "recursive": recursive}, user=user
        )

        assert result.is_error
        assert escapes.name not in text_of(result)


@pytest.mark.parametrize("glob", GLOB_ESCAPES)
async def test_a_search_glob_cannot_reach_outside_the_sandbox(
    workspace: Client, user: str, escapes: EscapeTargets, glob: str
) -> None:
    secret = escapes.plant().strip()
    await write(workspace, user, "mine.txt", secret)

    everywhere = await ok(workspace, "search_files", {"pattern": secret}, user=user)
    escaping = await call(workspace, "search_files", {"pattern": secret, "glob": escapes.path(glob)}, user=user)

    assert [match["path"] for match in everywhere["matches"]] == ["mine.txt"]
    assert escaping.is_error or escaping.structured_content == {"matches": [], "files_searched": 0, "truncated": False}


@pytest.mark.parametrize("path", ["..", ".", "nul\x00byte.txt", "a\\b.txt", ".tmp-reserved.txt", "a/.tmp-x/b.txt"])
@pytest.mark.parametrize("tool", ["read_file", "write_file", "append_file", "delete_file", "make_directory"])
async def test_malformed_and_reserved_paths_are_refused(
    workspace: Client, user: str, home: Path, tool: str, path: str
) -> None:
    arguments = {"path": path, "content": "x"} if tool in ("write_file", "append_file") else {"path": path}

    result = await call(workspace, tool, arguments, user=user)

    assert result.is_error
    assert contents(home) == {}


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


async def test_a_catastrophic_regular_expression_is_stopped_with_an_error(workspace: Client, user: str) -> None:
    await write(workspace, user, "xs.txt", "x" * 60 + "\n")

    with anyio.fail_after(PROMPT_REPLY_SECONDS):  # Python's re would backtrack here for longer than the universe
        stopped = await call(workspace, "search_files", {"pattern": "(?:x|xx)+y", "regex": True}, user=user)
    literal = await ok(workspace, "search_files", {"pattern": "(?:x|xx)+y"}, user=user)

    assert stopped.is_error
    assert literal["matches"] == []


async def test_temporary_files_are_hidden_from_listing_and_search(workspace: Client, user: str, home: Path) -> None:
    # What a write leaves behind when the process dies between creating its temporary file and renaming it.
    (home / "sub").mkdir()
    (home / ".tmp-abc123").write_text("half written\n")
    (home / "sub" / ".tmp-def456").write_text("half written\n")

    listing = await ok(workspace, "list_files", {"recursive": True}, user=user)
    search = await ok(workspace, "search_files", {"pattern": "half written"}, user=user)
    read = await call(workspace, "read_file", {"path": ".tmp-abc123"}, user=user)
    await ok(workspace, "delete_file", {"path": "sub"}, user=user)  # empty, as far as the user can see

    assert [entry["path"] for entry in listing["entries"]] == ["sub"]
    assert (search["matches"], search["files_searched"]) == ([], 0)
    assert read.is_error
    assert contents(home) == {".tmp-abc123": "half written\n"}


# A workspace server whose process may not write files past FILE_SIZE_LIMIT bytes (RLIMIT_FSIZE), so a longer
# write fails half-way with EFBIG, as on a full disk; Python ignores SIGXFSZ, which would otherwise end it.
FILE_SIZE_LIMIT = MAX_FILE_BYTES // 2
_SERVER_WITH_FILE_SIZE_LIMIT = f"""
import resource
from mcp_servers.workspace.__main__ import main
resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_SIZE_LIMIT}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
main([])
"""


async def test_a_write_that_fails_half_way_leaves_no_temporary_file(
    workspace_env: dict[str, str], tmp_path: Path, user: str
) -> None:
    env = {**workspace_env, "WORKSPACE_ROOT": str(tmp_path)}
    async with connect_python(["-c", _SERVER_WITH_FILE_SIZE_LIMIT], env) as limited:
        failed = await call(limited, "write_file", {"path": "big.txt", "content": "x" * MAX_FILE_BYTES}, user=user)
        listing = await ok(limited, "list_files", {}, user=user)

    assert failed.is_error
    assert listing["entries"] == []
    assert contents(tmp_path / user_directory_name(user)) == {}


async def test_concurrent_writes_never_pass_the_entry_limit(workspace: Client, user: str, home: Path) -> None:
    attempts = 3 * MAX_ENTRIES

    results = await asyncio.gather(
        *(call(workspace, "write_file", {"path": f"f{n}.txt", "content": "x"}, user=user) for n in range(attempts))
    )

    assert sum(not result.is_error for result in results) == MAX_ENTRIES
    assert len(contents(home)) == MAX_ENTRIES


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
