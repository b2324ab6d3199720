"""The workspace's file operations on their own, for what a client cannot provoke reliably: simultaneous calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mcp_servers.workspace.files import LimitExceeded, Limits, UserFiles, UserLocks
from mcp_servers.workspace.sandbox import Sandbox

CONCURRENT_CALLS = 30
ALLOWED = 5
# Files already in the folder: the longer each quota check takes, the surer that every call checks before any
# writes, which is when a check-then-write without a lock lets them all through.
EXISTING_FILES = 200
ROUNDS = 3

Operation = Callable[[UserFiles, int], object]


def race(folder: Path, limits: Limits, operation: Operation) -> list[bool]:
    """Run ``operation`` from many threads released at once, each on its own ``UserFiles`` as the server makes them.

    Returns, per call, whether it succeeded (False: it was refused with ``LimitExceeded``).
    """
    locks = UserLocks()
    start = threading.Barrier(CONCURRENT_CALLS)

    def attempt(n: int) -> bool:
        files = UserFiles(Sandbox(folder), limits, locks.for_folder(folder))
        start.wait(timeout=30)
        try:
            operation(files, n)
        except LimitExceeded:
            return False
        return True

    with ThreadPoolExecutor(CONCURRENT_CALLS) as pool:
        return list(pool.map(attempt, range(CONCURRENT_CALLS)))


def folder_with_files(parent: Path) -> Path:
    folder = parent / "user"
    folder.mkdir(parents=True)
    for n in range(EXISTING_FILES):
        (folder / f"old-{n}.txt").write_text("o")
    return folder


def write_a_new_file(files: UserFiles, n: int) -> object:
    return files.write(f"new-{n}.txt", "x")


def append_to_one_file(files: UserFiles, n: int) -> object:
    return files.append("log.txt", "x" * 10)


@pytest.mark.parametrize(
    ("limits", "operation"),
    [
        (
            Limits(max_file_bytes=100, max_entries=EXISTING_FILES + ALLOWED, max_bytes=10**6, search_seconds=1),
            write_a_new_file,
        ),
        (
            Limits(max_file_bytes=100, max_entries=10**6, max_bytes=EXISTING_FILES + 10 * ALLOWED, search_seconds=1),
            append_to_one_file,
        ),
    ],
    ids=["write, entry limit", "append, byte limit"],
)
def test_concurrent_changes_never_pass_the_workspace_limits(
    tmp_path: Path, limits: Limits, operation: Operation
) -> None:
    for round_ in range(ROUNDS):
        folder = folder_with_files(tmp_path / str(round_))

        succeeded = race(folder, limits, operation)

        assert (succeeded.count(True), succeeded.count(False)) == (ALLOWED, CONCURRENT_CALLS - ALLOWED)
        stored = list(folder.iterdir())
        assert len(stored) <= limits.max_entries
        assert sum(path.stat().st_size for path in stored) <= limits.max_bytes
