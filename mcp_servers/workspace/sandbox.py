"""Where each user's files live, and the one function that turns a caller's path into a path inside them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

from mcp.server.mcpserver.exceptions import ToolError

MAX_PATH_CHARS = 1024
MAX_NAME_CHARS = 255
TEMP_PREFIX = ".tmp-"
"""Names the server gives its in-progress writes; hidden from listing and search, and refused in callers' paths."""
_UNSAFE = re.compile(r"[^a-z0-9_-]+")


class WorkspaceError(ToolError):
    """A request the workspace refuses; the SDK hands the message to the model as an error result."""


class PathRefused(WorkspaceError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"Refused path {path!r}: {reason}.")
        self.path = path
        self.reason = reason


def user_directory_name(user_id: str) -> str:
    """A directory name for ``user_id`` that is safe on any filesystem and unique per id.

    A readable slug of the id plus a hash of the whole id, so ``Bob`` and ``bob`` (or two ids that slug alike)
    never share a directory, and nothing in an id can name a path such as ``..``.
    """
    slug = _UNSAFE.sub("-", user_id.lower()).strip("-")[:32] or "user"
    digest = hashlib.sha256(user_id.encode()).hexdigest()[:16]
    return f"{slug}-{digest}"


class Sandbox:
    """One user's directory. ``resolve`` is the only way from a caller's path to a filesystem path."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def ensure(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def resolve(self, path: str, *, allow_root: bool = False) -> Path:
        """The real path ``path`` names inside the sandbox, with every symbolic link followed.

        Raises:
            PathRefused: ``path`` is malformed, absolute, climbs with ``..``, names a reserved temporary file, or
                leads outside through a link.
        """
        if "\x00" in path:
            raise PathRefused(path, "it contains a NUL byte")
        if len(path) > MAX_PATH_CHARS:
            raise PathRefused(path[:40] + "…", f"it is longer than {MAX_PATH_CHARS} characters")
        if "\\" in path:
            raise PathRefused(path, "use '/' to separate folders")
        pure = PurePosixPath(path)
        if pure.is_absolute() or path.startswith("~"):
            raise PathRefused(path, "give a path relative to the workspace root, such as 'notes/todo.md'")
        if ".." in pure.parts:
            raise PathRefused(path, "'..' is not allowed; paths stay inside the workspace")
        if any(len(part) > MAX_NAME_CHARS for part in pure.parts):
            raise PathRefused(path, f"a name is longer than {MAX_NAME_CHARS} characters")
        if any(part.startswith(TEMP_PREFIX) for part in pure.parts):
            raise PathRefused(path, f"names starting with {TEMP_PREFIX!r} are reserved for the server")
        if pure.parts in ((), (".",)) and not allow_root:
            raise PathRefused(path, "name a file or folder inside the workspace, not the workspace itself")
        try:
            real = (self.root / pure).resolve()
        except (OSError, RuntimeError) as exc:  # a symbolic-link loop
            raise PathRefused(path, "it cannot be resolved") from exc
        if not real.is_relative_to(self.root):
            raise PathRefused(path, "it leads outside the workspace through a symbolic link")
        return real

    def relative(self, real: Path) -> str:
        """How a caller names ``real``: relative, with '/' separators; '.' for the root."""
        return real.relative_to(self.root).as_posix()

    def contains(self, real: Path) -> bool:
        return real.resolve().is_relative_to(self.root)
