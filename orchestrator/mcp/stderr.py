"""Drain a stdio server's stderr so it can never block the server, stall the event loop or flood our logs."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator, Iterable
from contextlib import asynccontextmanager
from typing import Final, TextIO

import anyio
import anyio.lowlevel

from orchestrator.mcp.redaction import redact

logger = logging.getLogger(__name__)

_CHUNK: Final = 64 * 1024
_MAX_LINE: Final = 500
"""Characters of one stderr line that reach the log; the rest is cut."""
_MAX_PENDING: Final = 8 * 1024
"""Bytes kept of a line still waiting for its newline; a server writing without newlines cannot grow memory."""
_LINES_PER_WINDOW: Final = 20
_WINDOW_SECONDS: Final = 10.0
_FINAL_READS: Final = 16
"""Chunks read after the server stopped; a leftover child still writing to the pipe cannot keep us reading."""


class StderrTail:
    """What a server wrote to stderr: the last line, for error messages; everything else goes to the log, rate-limited.

    Lines are masked with the server's secrets before they are logged. Once the rate limit is reached, lines are only
    counted until the window ends, and only the last one is decoded: a server writing as fast as it can costs little.

    Attributes:
        errlog: the file to hand to the server process as its stderr.
        last_line: the last non-blank line, cut to a few hundred characters; not masked.
    """

    def __init__(self, server_id: str, errlog: TextIO, secrets: Iterable[str] = ()) -> None:
        self.errlog = errlog
        self.last_line: str | None = None
        self._server_id = server_id
        self._secrets = tuple(secrets)
        self._pending = b""
        self._window_start = anyio.current_time()
        self._logged_in_window = 0
        self._suppressed = 0

    def feed(self, data: bytes) -> None:
        buffer = self._pending + data
        end = buffer.rfind(b"\n")
        self._pending = buffer[end + 1 :][-_MAX_PENDING:]
        if end >= 0:
            self._take_lines(buffer[:end])

    def flush(self) -> None:
        """Log a final line that had no newline."""
        if self._pending:
            self.feed(b"\n")
        self._report_suppressed()

    def _take_lines(self, lines: bytes) -> None:
        """Log complete ``lines`` (joined by newlines) while the window allows, and count the rest."""
        position = 0
        while position <= len(lines) and self._may_log():
            end = lines.find(b"\n", position)
            if end < 0:
                end = len(lines)
            line = _decode(lines[position:end])
            position = end + 1
            if line:
                self.last_line = line[:_MAX_LINE]
                self._logged_in_window += 1
                # Masked before it is cut, so a secret across the cut cannot leave a visible prefix.
                logger.info("MCP server %s stderr: %s", self._server_id, redact(line, self._secrets)[:_MAX_LINE])
        if position > len(lines):
            return
        rest = lines[position:]
        self._suppressed += rest.count(b"\n") + 1
        last = rest.rstrip()
        line = _decode(last[last.rfind(b"\n") + 1 :])
        if line:
            self.last_line = line[:_MAX_LINE]

    def _may_log(self) -> bool:
        now = anyio.current_time()
        if now - self._window_start >= _WINDOW_SECONDS:
            self._report_suppressed()
            self._window_start, self._logged_in_window = now, 0
        return self._logged_in_window < _LINES_PER_WINDOW

    def _report_suppressed(self) -> None:
        if self._suppressed:
            logger.info("MCP server %s: %d more stderr lines not logged", self._server_id, self._suppressed)
            self._suppressed = 0


@asynccontextmanager
async def capture_stderr(server_id: str, secrets: Iterable[str] = ()) -> AsyncGenerator[StderrTail]:
    """A pipe for a server's stderr, drained by a task for as long as the context is open.

    Args:
        server_id: names the server in log lines.
        secrets: masked in every logged line (see ``orchestrator.mcp.redaction.config_secrets``).
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    tail = StderrTail(server_id, os.fdopen(write_fd, "w"), secrets)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, read_fd, tail)
            try:
                yield tail
            finally:
                tg.cancel_scope.cancel()
    finally:
        # What the process wrote just before it exited.
        for _ in range(_FINAL_READS):
            data = _read_chunk(read_fd)
            if not data:
                break
            tail.feed(data)
        tail.flush()
        tail.errlog.close()
        os.close(read_fd)


async def _drain(read_fd: int, tail: StderrTail) -> None:
    # One chunk per turn, then let other tasks run: a server writing faster than we read must not starve them.
    while True:
        await anyio.wait_readable(read_fd)
        data = _read_chunk(read_fd)
        if data == b"":
            return
        if data is not None:
            tail.feed(data)
        await anyio.lowlevel.checkpoint()


def _read_chunk(read_fd: int) -> bytes | None:
    """One chunk from the pipe; None when it is empty for now, ``b""`` at its end (or when it failed)."""
    try:
        return os.read(read_fd, _CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip()
