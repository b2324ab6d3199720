"""The workspace MCP server: a private folder of text files for each user."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from mcp_servers._common import READ_ONLY, current_user_id, tool_annotations
from mcp_servers.workspace.files import (
    MAX_READ_CHARS,
    MAX_READ_LINES,
    DirectoryMade,
    FileContent,
    Limits,
    Listing,
    Moved,
    Removed,
    SearchResult,
    UserFiles,
    UserLocks,
    Written,
)
from mcp_servers.workspace.sandbox import MAX_PATH_CHARS, Sandbox, user_directory_name
from mcp_servers.workspace.settings import WorkspaceSettings

MAX_SEARCH_RESULTS = 200
MAX_PATTERN_CHARS = 500

FilePath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="Relative to the workspace root, with '/' between folders, e.g. 'notes/todo.md'.",
    ),
]
Content = Annotated[str, Field(description="UTF-8 text.")]

INSTRUCTIONS = (
    "A private folder of text files for the current user. Paths are relative to the workspace root "
    "('.' is the root) and use '/'; '..' and absolute paths are refused. Use list_files to look around, "
    "search_files to find text, read_file to read (in pages of lines for long files)."
)


def create_server(settings: WorkspaceSettings) -> MCPServer:
    """Build the workspace server; each user's folder under ``settings.root`` is created on first use."""
    root = settings.root.resolve()
    limits = Limits(
        max_file_bytes=settings.max_file_bytes,
        max_entries=settings.max_entries_per_user,
        max_bytes=settings.max_bytes_per_user,
        search_seconds=settings.search_timeout_seconds,
    )
    locks = UserLocks()
    server = MCPServer("workspace", title="Workspace", instructions=INSTRUCTIONS)

    def files(ctx: Context) -> UserFiles:
        folder = root / user_directory_name(current_user_id(ctx))
        return UserFiles(Sandbox(folder), limits, locks.for_folder(folder))

    # Synchronous tools: the SDK runs them on a worker thread, which suits blocking file I/O.
    @server.tool(
        title="List files",
        description="List the files and folders in a folder of the workspace, with file sizes in bytes.",
        annotations=READ_ONLY,
    )
    def list_files(
        ctx: Context,
        path: Annotated[str, Field(max_length=MAX_PATH_CHARS, description="Folder to list; '.' is the root.")] = ".",
        recursive: Annotated[bool, Field(description="Also list everything in sub-folders.")] = False,
    ) -> Listing:
        return files(ctx).list_directory(path, recursive=recursive)

    @server.tool(
        title="Read file",
        description=(
            f"Read a text file, up to {MAX_READ_LINES} lines or {MAX_READ_CHARS} characters at a time. "
            "For long files, read on from next_offset. Binary files are refused."
        ),
        annotations=READ_ONLY,
    )
    def read_file(
        path: FilePath,
        ctx: Context,
        offset: Annotated[int, Field(ge=0, description="Lines to skip from the start.")] = 0,
        limit: Annotated[int, Field(ge=1, le=MAX_READ_LINES, description="Most lines to return.")] = 500,
    ) -> FileContent:
        return files(ctx).read(path, offset=offset, limit=limit)

    @server.tool(
        title="Write file",
        description=(
            "Create a text file, or replace all of an existing file's content. Missing folders are created. "
            f"Files may hold at most {settings.max_file_bytes} bytes."
        ),
        annotations=tool_annotations(read_only=False, destructive=True, idempotent=True),
    )
    def write_file(path: FilePath, content: Content, ctx: Context) -> Written:
        return files(ctx).write(path, content)

    @server.tool(
        title="Append to file",
        description="Add text to the end of a file, creating it if needed. Include a trailing newline if you want one.",
        annotations=tool_annotations(read_only=False),
    )
    def append_file(path: FilePath, content: Content, ctx: Context) -> Written:
        return files(ctx).append(path, content)

    @server.tool(
        title="Delete file",
        description="Delete a file, or an empty folder. This cannot be undone.",
        annotations=tool_annotations(read_only=False, destructive=True, idempotent=True),
    )
    def delete_file(path: FilePath, ctx: Context) -> Removed:
        return files(ctx).delete(path)

    @server.tool(
        title="Make folder",
        description="Create a folder and any missing parents; does nothing if it exists.",
        annotations=tool_annotations(read_only=False, idempotent=True),
    )
    def make_directory(path: FilePath, ctx: Context) -> DirectoryMade:
        return files(ctx).make_directory(path)

    @server.tool(
        title="Move file",
        description=(
            "Move or rename a file or folder. The destination is the full new path, not a folder to move into; "
            "missing folders are created. An existing file is replaced only with overwrite=true."
        ),
        annotations=tool_annotations(read_only=False, destructive=True),
    )
    def move_file(
        source: FilePath,
        destination: FilePath,
        ctx: Context,
        overwrite: Annotated[bool, Field(description="Replace an existing destination file.")] = False,
    ) -> Moved:
        return files(ctx).move(source, destination, overwrite=overwrite)

    @server.tool(
        title="Search files",
        description=(
            "Find lines containing a text (or matching a Python regular expression with regex=true) in the "
            "workspace's text files. Returns path, line number and line for each match. A regular expression "
            f"search that takes longer than {settings.search_timeout_seconds:g} s is stopped with an error."
        ),
        annotations=READ_ONLY,
    )
    def search_files(
        pattern: Annotated[str, Field(min_length=1, max_length=MAX_PATTERN_CHARS, description="What to look for.")],
        ctx: Context,
        glob: Annotated[
            str | None,
            Field(
                max_length=MAX_PATH_CHARS,
                description="Only files whose path matches, e.g. '*.md' or 'notes/*' ('*' also crosses folders).",
            ),
        ] = None,
        regex: Annotated[bool, Field(description="Treat pattern as a regular expression.")] = False,
        ignore_case: Annotated[bool, Field(description="Match regardless of case.")] = True,
        limit: Annotated[int, Field(ge=1, le=MAX_SEARCH_RESULTS, description="Most matches to return.")] = 50,
    ) -> SearchResult:
        return files(ctx).search(pattern, glob=glob, use_regex=regex, ignore_case=ignore_case, limit=limit)

    return server
