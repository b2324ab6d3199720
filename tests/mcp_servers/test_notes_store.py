"""The note store on its own, for what a client cannot provoke reliably: many calls at exactly the same time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mcp_servers.notes.store import NoteLimitReached, NoteStore

CONCURRENT_CALLS = 30
MAX_NOTES = 5


def test_concurrent_adds_never_pass_the_note_limit(tmp_path: Path) -> None:
    store = NoteStore(tmp_path / "notes.db", max_notes_per_user=MAX_NOTES)
    start = threading.Barrier(CONCURRENT_CALLS)

    def add(n: int) -> bool:
        start.wait(timeout=30)  # every thread calls add() at once, as the server's worker threads may
        try:
            store.add("racer", title=f"note {n}", body="", tags=[])
        except NoteLimitReached:
            return False
        return True

    with ThreadPoolExecutor(CONCURRENT_CALLS) as pool:
        added = list(pool.map(add, range(CONCURRENT_CALLS)))

    assert (added.count(True), added.count(False)) == (MAX_NOTES, CONCURRENT_CALLS - MAX_NOTES)
    assert store.list_notes("racer", tag=None, limit=100).total == MAX_NOTES
