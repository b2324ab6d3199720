"""File operations on one user's sandbox, with the size and count limits applied.

Blocking by design: the SDK runs synchronous tools on a worker thread.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Concatenate, Literal, ParamSpec, TypeVar

import regex
from pydantic import BaseModel, Field

from mcp_servers.workspace.sandbox import TEMP_PREFIX, Sandbox, WorkspaceError

MAX_LIST_ENTRIES = 500
MAX_READ_LINES = 2_000
MAX_READ_CHARS = 100_000
MAX_MATCH_CHARS = 240
BINARY_SNIFF_BYTES = 8_192

EntryType = Literal["file", "directory"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class NotFound(WorkspaceError):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path!r} does not exist. Use list_files to see what is there.")
        self.path = path


class LimitExceeded(WorkspaceError):
    """A size or count limit of the workspace would be passed."""


class SearchTimedOut(WorkspaceError):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The regular expression search took longer than {seconds:g} s and was stopped. Use a simpler pattern "
            "(nested or overlapping repeats such as '(x|xx)+' can take forever), plain text (regex=false), or a glob."
        )
        self.seconds = seconds


class Entry(BaseModel):
    path: str = Field(description="Relative to the workspace root.")
    type: EntryType
    size: int | None = Field(default=None, description="Bytes, for files.")


class Listing(BaseModel):
    path: str
    entries: list[Entry]
    truncated: bool = Field(description=f"True when more than {MAX_LIST_ENTRIES} entries were found.")


class FileContent(BaseModel):
    path: str
    content: str
    first_line: int = Field(description="1-based number of the first line in content (0 for an empty file).")
    last_line: int = Field(description="1-based number of the last line in content.")
    total_lines: int
    next_offset: int | None = Field(description="Pass as offset to read on; null at the end of the file.")


class Written(BaseModel):
    path: str
    size: int = Field(description="The file's size in bytes after the write.")
    created: bool


class Removed(BaseModel):
    path: str
    type: EntryType


class DirectoryMade(BaseModel):
    path: str
    created: bool = Field(description="False when the folder already existed.")


class Moved(BaseModel):
    source: str
    destination: str


class Match(BaseModel):
    path: str
    line: int = Field(description="1-based line number.")
    text: str


class SearchResult(BaseModel):
    matches: list[Match]
    files_searched: int
    truncated: bool = Field(description="True when the result limit cut the search short.")


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int
    max_entries: int
    max_bytes: int
    search_seconds: float
    """The most time one regular-expression search may take."""


class UserLocks:
    """One lock per user folder, held while an operation checks the limits and changes the folder.

    Without it two calls of one user could both pass the quota check before either writes. The locks serialise
    the threads of one server process; servers in several processes must not share a ``WORKSPACE_ROOT``.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Path, threading.Lock] = {}

    def for_folder(self, folder: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(folder, threading.Lock())


def _os_errors_reported(method: Callable[Concatenate[UserFiles, _P], _R]) -> Callable[Concatenate[UserFiles, _P], _R]:
    """Turn a filesystem failure into an error the model can read, without the server's absolute paths."""

    @functools.wraps(method)
    def wrapper(self: UserFiles, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            raise WorkspaceError(f"The filesystem refused: {exc.strerror or type(exc).__name__}.") from exc

    return wrapper


def _decode_text(data: bytes) -> str | None:
    """The text in ``data``, or None when it looks binary (a NUL byte, or not UTF-8)."""
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _kind(real: Path) -> EntryType:
    return "directory" if real.is_dir() else "file"


class UserFiles:
    """What the tools do to one user's files; every caller path goes through ``Sandbox.resolve``.

    Operations that change the folder hold ``lock`` (the user's lock from ``UserLocks``) from their limit checks
    to their last change.
    """

    def __init__(self, sandbox: Sandbox, limits: Limits, lock: threading.Lock) -> None:
        self._sandbox = sandbox
        self._limits = limits
        self._lock = lock
        sandbox.ensure()

    @_os_errors_reported
    def list_directory(self, path: str, *, recursive: bool) -> Listing:
        directory = self._existing(path, allow_root=True)
        if not directory.is_dir():
            raise WorkspaceError(f"{path!r} is a file; use read_file to read it.")
        entries: list[Entry] = []
        for real in self._walk(directory, recursive=recursive):
            if len(entries) == MAX_LIST_ENTRIES:
                return Listing(path=self._sandbox.relative(directory), entries=entries, truncated=True)
            kind = _kind(real)
            size = real.stat().st_size if kind == "file" else None
            entries.append(Entry(path=self._sandbox.relative(real), type=kind, size=size))
        return Listing(path=self._sandbox.relative(directory), entries=entries, truncated=False)

    @_os_errors_reported
    def read(self, path: str, *, offset: int, limit: int) -> FileContent:
        real = self._existing(path)
        if real.is_dir():
            raise WorkspaceError(f"{path!r} is a folder; use list_files to see inside it.")
        size = real.stat().st_size
        if size > self._limits.max_file_bytes:
            raise LimitExceeded(f"{path!r} is {size} bytes; files over {self._limits.max_file_bytes} are not read.")
        text = _decode_text(real.read_bytes())
        if text is None:
            raise WorkspaceError(f"{path!r} is a binary file ({size} bytes); only text files can be read.")
        lines = text.splitlines(keepends=True)
        if offset > len(lines) or (offset == len(lines) and lines):
            raise WorkspaceError(f"offset {offset} is past the end: {path!r} has {len(lines)} lines.")
        chunk: list[str] = []
        chars = 0
        for line in lines[offset : offset + limit]:
            if chars + len(line) > MAX_READ_CHARS:
                if not chunk:  # one huge line: show its start rather than nothing
                    chunk.append(line[:MAX_READ_CHARS])
                break
            chunk.append(line)
            chars += len(line)
        end = offset + len(chunk)
        return FileContent(
            path=self._sandbox.relative(real),
            content="".join(chunk),
            first_line=offset + 1 if chunk else 0,
            last_line=end,
            total_lines=len(lines),
            next_offset=end if end < len(lines) else None,
        )

    @_os_errors_reported
    def write(self, path: str, content: str) -> Written:
        real = self._sandbox.resolve(path)
        data = content.encode()
        with self._lock:
            created, _ = self._make_room(path, real, len(data), append=False)
            _replace_atomically(real, data)
        return Written(path=self._sandbox.relative(real), size=len(data), created=created)

    @_os_errors_reported
    def append(self, path: str, content: str) -> Written:
        real = self._sandbox.resolve(path)
        data = content.encode()
        with self._lock:
            created, old_size = self._make_room(path, real, len(data), append=True)
            with real.open("ab") as file:
                file.write(data)
        return Written(path=self._sandbox.relative(real), size=old_size + len(data), created=created)

    def _make_room(self, path: str, real: Path, data_size: int, *, append: bool) -> tuple[bool, int]:
        """Check that ``data_size`` bytes may be written (or appended) to ``real``, and create its folders.

        Returns whether the file is new and its current size. Call with the user's lock held.
        """
        if real.is_dir():
            raise WorkspaceError(f"{path!r} is a folder; give a file path.")
        created = not real.exists()
        old_size = 0 if created else real.stat().st_size
        size = old_size + data_size if append else data_size
        self._check_file_size(path, size)
        self._check_quota(new_entries=self._missing_parents(real) + created, new_bytes=size - old_size)
        real.parent.mkdir(parents=True, exist_ok=True)
        return created, old_size

    @_os_errors_reported
    def delete(self, path: str) -> Removed:
        with self._lock:
            real = self._existing(path)
            kind = _kind(real)
            if kind == "directory":
                children = list(real.iterdir())
                if any(not child.name.startswith(TEMP_PREFIX) for child in children):
                    raise WorkspaceError(f"{path!r} is a folder that is not empty; delete what is inside first.")
                for leftover in children:  # hidden temporary files of writes that never finished: none is running
                    leftover.unlink()
                real.rmdir()
            else:
                real.unlink()
        return Removed(path=self._sandbox.relative(real), type=kind)

    @_os_errors_reported
    def make_directory(self, path: str) -> DirectoryMade:
        real = self._sandbox.resolve(path)
        with self._lock:
            if real.exists() and not real.is_dir():
                raise WorkspaceError(f"{path!r} is a file.")
            created = not real.exists()
            self._check_quota(new_entries=self._missing_parents(real) + created, new_bytes=0)
            real.mkdir(parents=True, exist_ok=True)
        return DirectoryMade(path=self._sandbox.relative(real), created=created)

    @_os_errors_reported
    def move(self, source: str, destination: str, *, overwrite: bool) -> Moved:
        with self._lock:
            src = self._existing(source)
            dst = self._sandbox.resolve(destination)
            if dst == src:
                raise WorkspaceError("source and destination are the same.")
            if dst.is_relative_to(src):
                raise WorkspaceError(f"cannot move {source!r} into itself.")
            if dst.exists():
                if dst.is_dir():
                    raise WorkspaceError(f"{destination!r} is an existing folder; give the full new path.")
                if src.is_dir() or not overwrite:
                    raise WorkspaceError(f"{destination!r} exists; pass overwrite=true to replace the file.")
            self._check_quota(new_entries=self._missing_parents(dst), new_bytes=0)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        return Moved(source=self._sandbox.relative(src), destination=self._sandbox.relative(dst))

    @_os_errors_reported
    def search(self, pattern: str, *, glob: str | None, use_regex: bool, ignore_case: bool, limit: int) -> SearchResult:
        """Matching lines in the user's text files, in path order.

        A regular expression is matched by the ``regex`` package, which, unlike ``re``, can stop a match that
        backtracks without end: the whole search gets ``Limits.search_seconds``. A plain text is escaped and
        needs no bound, since matching it takes time linear in the line.

        Raises:
            WorkspaceError: the regular expression is invalid.
            SearchTimedOut: the regular expression search ran out of time.
        """
        flags = regex.IGNORECASE if ignore_case else 0
        try:
            compiled = regex.compile(pattern if use_regex else regex.escape(pattern), flags)
        except regex.error as exc:
            raise WorkspaceError(f"invalid regular expression: {exc}.") from exc
        deadline = time.monotonic() + self._limits.search_seconds if use_regex else None
        matches: list[Match] = []
        searched = 0
        for real in self._walk(self._sandbox.root, recursive=True):
            relative = self._sandbox.relative(real)
            if real.is_dir() or (glob is not None and not fnmatchcase(relative, glob)):
                continue
            if real.stat().st_size > self._limits.max_file_bytes:
                continue
            text = _decode_text(real.read_bytes())
            if text is None:
                continue
            searched += 1
            for number, line in enumerate(text.splitlines(), start=1):
                if self._line_matches(compiled, line, deadline):
                    if len(matches) == limit:
                        return SearchResult(matches=matches, files_searched=searched, truncated=True)
                    matches.append(Match(path=relative, line=number, text=line.strip()[:MAX_MATCH_CHARS]))
        return SearchResult(matches=matches, files_searched=searched, truncated=False)

    def _line_matches(self, compiled: regex.Pattern[str], line: str, deadline: float | None) -> bool:
        if deadline is None:
            return compiled.search(line) is not None
        remaining = deadline - time.monotonic()
        if remaining > 0:
            try:
                return compiled.search(line, timeout=remaining) is not None
            except TimeoutError:
                pass
        raise SearchTimedOut(self._limits.search_seconds)

    def _existing(self, path: str, *, allow_root: bool = False) -> Path:
        real = self._sandbox.resolve(path, allow_root=allow_root)
        if not real.exists():
            raise NotFound(path)
        return real

    def _walk(self, directory: Path, *, recursive: bool) -> Iterator[Path]:
        """Entries under ``directory``, depth first in name order.

        Links leading outside are skipped, never followed; so are the temporary files of writes, which are not
        the user's files.
        """
        for child in sorted(directory.iterdir(), key=lambda path: path.name):
            if child.name.startswith(TEMP_PREFIX) or (child.is_symlink() and not self._sandbox.contains(child)):
                continue
            yield child
            if recursive and child.is_dir() and not child.is_symlink():
                yield from self._walk(child, recursive=True)

    def _missing_parents(self, real: Path) -> int:
        return sum(1 for parent in real.parents if parent.is_relative_to(self._sandbox.root) and not parent.exists())

    def _check_file_size(self, path: str, size: int) -> None:
        if size > self._limits.max_file_bytes:
            raise LimitExceeded(f"{path!r} would be {size} bytes; the limit is {self._limits.max_file_bytes}.")

    def _check_quota(self, *, new_entries: int, new_bytes: int) -> None:
        # Counts everything on disk, temporary files left by a crashed process included: they take real space.
        entries = 0
        total = 0
        for current, dirnames, filenames in os.walk(self._sandbox.root):
            entries += len(dirnames) + len(filenames)
            total += sum((Path(current) / name).lstat().st_size for name in filenames)
        if new_entries and entries + new_entries > self._limits.max_entries:
            raise LimitExceeded(
                f"the workspace holds {entries} files and folders, the most allowed is {self._limits.max_entries}; "
                "delete some first."
            )
        if new_bytes > 0 and total + new_bytes > self._limits.max_bytes:
            raise LimitExceeded(
                f"the workspace holds {total} bytes, the most allowed is {self._limits.max_bytes}; delete some first."
            )


def _replace_atomically(real: Path, data: bytes) -> None:
    """Write ``data`` beside ``real`` and swap it in, so a reader never sees half a file.

    The temporary file is removed whatever stops the write (a full disk, a file-size limit, any other error).
    """
    fd, temporary = tempfile.mkstemp(dir=real.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, real)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
