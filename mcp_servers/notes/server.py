"""The notes MCP server: each user's own notes, kept in SQLite."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field, StringConstraints

from mcp_servers._common import READ_ONLY, current_user_id, tool_annotations
from mcp_servers.notes.settings import NotesSettings
from mcp_servers.notes.store import Deleted, Note, NoteList, NoteStore

MAX_TITLE_CHARS = 200
MAX_BODY_CHARS = 100_000
MAX_TAGS = 20
MAX_TAG_CHARS = 50
MAX_QUERY_CHARS = 200
MAX_LIMIT = 100

Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_CHARS),
    Field(description="A short, specific title."),
]
Body = Annotated[str, Field(max_length=MAX_BODY_CHARS, description="The text of the note; Markdown is fine.")]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TAG_CHARS)]
Tags = Annotated[
    list[Tag],
    Field(max_length=MAX_TAGS, description="Labels such as 'work' or 'recipes'; stored trimmed and lower-case."),
]
NoteId = Annotated[int, Field(ge=1, description="The note's id, as returned by add_note, list_notes or search_notes.")]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"At most this many notes (1-{MAX_LIMIT}).")]
Query = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS),
    Field(description="Text to look for; matched case-insensitively anywhere in titles, bodies and tags."),
]

INSTRUCTIONS = (
    "Personal notes of the current user: add, list, search, read, change and delete them. "
    "Each user sees only their own notes. Find a note's id with list_notes or search_notes before get_note, "
    "update_note or delete_note."
)


def create_server(settings: NotesSettings) -> MCPServer:
    """Build the notes server; the database file and its folder are created on first use."""
    store = NoteStore(settings.db_path, max_notes_per_user=settings.max_notes_per_user)
    server = MCPServer("notes", title="Notes", instructions=INSTRUCTIONS)

    # Synchronous tools: the SDK runs them on a worker thread, which suits the blocking sqlite3 store.
    @server.tool(
        title="Add note",
        description="Save a new note for the user and return it with its id.",
        annotations=tool_annotations(read_only=False),
    )
    def add_note(title: Title, ctx: Context, body: Body = "", tags: Tags | None = None) -> Note:
        return store.add(current_user_id(ctx), title=title, body=body, tags=tags or [])

    @server.tool(
        title="List notes",
        description=(
            "List the user's notes, most recently changed first, as id, title, tags and a preview of the body. "
            "Give a tag to list only notes with that tag. Use get_note to read a whole note."
        ),
        annotations=READ_ONLY,
    )
    def list_notes(
        ctx: Context,
        tag: Annotated[Tag | None, Field(description="Only notes with this tag.")] = None,
        limit: Limit = 20,
    ) -> NoteList:
        return store.list_notes(current_user_id(ctx), tag=tag, limit=limit)

    @server.tool(
        title="Search notes",
        description=(
            "Find the user's notes whose title, body or tags contain the query (case-insensitive substring, "
            "not word or fuzzy search). Title matches come first, then the most recently changed."
        ),
        annotations=READ_ONLY,
    )
    def search_notes(query: Query, ctx: Context, limit: Limit = 20) -> NoteList:
        return store.search(current_user_id(ctx), query=query, limit=limit)

    @server.tool(title="Get note", description="Read one whole note by its id.", annotations=READ_ONLY)
    def get_note(id: NoteId, ctx: Context) -> Note:
        return store.get(current_user_id(ctx), id)

    @server.tool(
        title="Update note",
        description=(
            "Change a note's title, body or tags; fields left out keep their value. "
            "The new value replaces the old one (tags too: pass the full list)."
        ),
        annotations=tool_annotations(read_only=False, destructive=True, idempotent=True),
    )
    def update_note(
        id: NoteId, ctx: Context, title: Title | None = None, body: Body | None = None, tags: Tags | None = None
    ) -> Note:
        return store.update(current_user_id(ctx), id, title=title, body=body, tags=tags)

    @server.tool(
        title="Delete note",
        description="Delete a note by its id. This cannot be undone.",
        annotations=tool_annotations(read_only=False, destructive=True, idempotent=True),
    )
    def delete_note(id: NoteId, ctx: Context) -> Deleted:
        return store.delete(current_user_id(ctx), id)

    return server
