"""Per-user notes in one SQLite file.

Blocking by design: the SDK runs synchronous tools on a worker thread, and every call opens its own short-lived
connection, so no connection is shared between threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

PREVIEW_CHARS = 160

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    tags TEXT NOT NULL,  -- JSON array of normalised tags
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_by_user ON notes (user_id, updated_at DESC, id DESC);
"""

_HAS_TAG = "EXISTS (SELECT 1 FROM json_each(notes.tags) WHERE value = :tag)"
_MATCHES = (
    "(instr(fold(title), :q) > 0 OR instr(fold(body), :q) > 0"
    " OR EXISTS (SELECT 1 FROM json_each(notes.tags) WHERE instr(fold(value), :q) > 0))"
)


class NoteError(ToolError):
    """A request the store cannot honour; the SDK hands the message to the model as an error result."""


class NoteNotFound(NoteError):
    def __init__(self, note_id: int) -> None:
        # Another user's note is reported exactly like a missing one, so ids reveal nothing.
        super().__init__(f"No note with id {note_id}. Use list_notes or search_notes to find ids.")
        self.note_id = note_id


class NoteLimitReached(NoteError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"You already have {limit} notes, the most allowed. Delete some before adding more.")
        self.limit = limit


class Note(BaseModel):
    id: int
    title: str
    body: str
    tags: list[str]
    created_at: str = Field(description="ISO 8601, UTC")
    updated_at: str = Field(description="ISO 8601, UTC")


class NoteSummary(BaseModel):
    id: int
    title: str
    tags: list[str]
    updated_at: str = Field(description="ISO 8601, UTC")
    preview: str = Field(description="The start of the body, or the text around the match when searching.")


class NoteList(BaseModel):
    notes: list[NoteSummary]
    total: int = Field(description="How many notes match in all; more than listed when the limit cut the list.")


class Deleted(BaseModel):
    id: int
    deleted: bool = True


def normalise_tags(tags: Sequence[str]) -> list[str]:
    """Trimmed, lower-cased, de-duplicated tags in their given order.

    Raises:
        NoteError: a tag is blank.
    """
    seen: dict[str, None] = {}
    for tag in tags:
        clean = " ".join(tag.split()).lower()
        if not clean:
            raise NoteError("Tags must not be blank.")
        seen[clean] = None
    return list(seen)


def _fold(value: str | None) -> str | None:
    return value.casefold() if value is not None else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _preview(body: str, query: str | None = None) -> str:
    flat = " ".join(body.split())
    start = 0
    if query:
        found = flat.casefold().find(query.casefold())
        start = max(0, found - PREVIEW_CHARS // 4) if found >= 0 else 0
    text = flat[start : start + PREVIEW_CHARS]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + PREVIEW_CHARS < len(flat) else ""
    return f"{prefix}{text}{suffix}"


def _note(row: Any) -> Note:
    return Note(
        id=row["id"],
        title=row["title"],
        body=row["body"],
        tags=json.loads(row["tags"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _summary(row: Any, query: str | None = None) -> NoteSummary:
    return NoteSummary(
        id=row["id"],
        title=row["title"],
        tags=json.loads(row["tags"]),
        updated_at=row["updated_at"],
        preview=_preview(row["body"], query),
    )


class NoteStore:
    """Notes kept apart by user id: every query is filtered by the caller's id."""

    def __init__(self, path: Path, *, max_notes_per_user: int) -> None:
        self._path = path
        self._max_notes = max_notes_per_user
        self._schema_lock = threading.Lock()
        self._schema_ready = False

    def add(self, user_id: str, *, title: str, body: str, tags: Sequence[str]) -> Note:
        now = _now()
        # Take the write lock before counting: a concurrent add that counted the same total would pass the limit.
        with self._connection(write=True) as db:
            (count,) = db.execute("SELECT COUNT(*) FROM notes WHERE user_id = ?", (user_id,)).fetchone()
            if count >= self._max_notes:
                raise NoteLimitReached(self._max_notes)
            cursor = db.execute(
                "INSERT INTO notes (user_id, title, body, tags, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, title, body, json.dumps(normalise_tags(tags)), now, now),
            )
            note_id = cursor.lastrowid
            assert note_id is not None  # an INSERT into a rowid table always sets it
            return self._get(db, user_id, note_id)

    def get(self, user_id: str, note_id: int) -> Note:
        with self._connection() as db:
            return self._get(db, user_id, note_id)

    def list_notes(self, user_id: str, *, tag: str | None, limit: int) -> NoteList:
        where = "user_id = :user"
        params: dict[str, object] = {"user": user_id, "limit": limit}
        if tag is not None:
            where += f" AND {_HAS_TAG}"
            params["tag"] = normalise_tags([tag])[0]
        with self._connection() as db:
            rows = db.execute(
                f"SELECT *, COUNT(*) OVER () AS total FROM notes WHERE {where}"
                " ORDER BY updated_at DESC, id DESC LIMIT :limit",
                params,
            ).fetchall()
        return NoteList(notes=[_summary(row) for row in rows], total=rows[0]["total"] if rows else 0)

    def search(self, user_id: str, *, query: str, limit: int) -> NoteList:
        params = {"user": user_id, "q": query.casefold(), "limit": limit}
        with self._connection() as db:
            rows = db.execute(
                "SELECT *, COUNT(*) OVER () AS total, instr(fold(title), :q) > 0 AS in_title FROM notes"
                f" WHERE user_id = :user AND {_MATCHES}"
                " ORDER BY in_title DESC, updated_at DESC, id DESC LIMIT :limit",
                params,
            ).fetchall()
        return NoteList(notes=[_summary(row, query) for row in rows], total=rows[0]["total"] if rows else 0)

    def update(
        self,
        user_id: str,
        note_id: int,
        *,
        title: str | None = None,
        body: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Note:
        changes: dict[str, object] = {}
        if title is not None:
            changes["title"] = title
        if body is not None:
            changes["body"] = body
        if tags is not None:
            changes["tags"] = json.dumps(normalise_tags(tags))
        if not changes:
            raise NoteError("Nothing to update: give a new title, body or tags.")
        changes["updated_at"] = _now()
        assignments = ", ".join(f"{column} = :{column}" for column in changes)
        with self._connection() as db:
            cursor = db.execute(
                f"UPDATE notes SET {assignments} WHERE id = :id AND user_id = :user",
                {**changes, "id": note_id, "user": user_id},
            )
            if cursor.rowcount == 0:
                raise NoteNotFound(note_id)
            return self._get(db, user_id, note_id)

    def delete(self, user_id: str, note_id: int) -> Deleted:
        with self._connection() as db:
            cursor = db.execute("DELETE FROM notes WHERE id = ? AND user_id = ?", (note_id, user_id))
        if cursor.rowcount == 0:
            raise NoteNotFound(note_id)
        return Deleted(id=note_id)

    def _get(self, db: sqlite3.Connection, user_id: str, note_id: int) -> Note:
        row = db.execute("SELECT * FROM notes WHERE id = ? AND user_id = ?", (note_id, user_id)).fetchone()
        if row is None:
            raise NoteNotFound(note_id)
        return _note(row)

    @contextmanager
    def _connection(self, *, write: bool = False) -> Generator[sqlite3.Connection]:
        """One transaction on a fresh connection: committed on success, rolled back on any error.

        With ``write``, the transaction holds SQLite's write lock from its first statement, so what it reads
        cannot change before it writes. Otherwise ``sqlite3`` begins the transaction only at the first
        INSERT, UPDATE or DELETE, and earlier reads are not part of it.
        """
        self._ensure_schema()
        db = sqlite3.connect(self._path, timeout=10)
        try:
            db.row_factory = sqlite3.Row
            db.create_function("fold", 1, _fold, deterministic=True)
            with db:
                if write:
                    db.execute("BEGIN IMMEDIATE")
                yield db
        finally:
            db.close()

    def _ensure_schema(self) -> None:
        with self._schema_lock:
            if self._schema_ready:
                return
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, timeout=10)
            try:
                db.execute("PRAGMA journal_mode=WAL")  # readers do not wait for writers; persists in the file
                db.executescript(_SCHEMA)
            finally:
                db.close()
            self._schema_ready = True
