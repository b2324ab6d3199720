"""Drain a stdio server's stderr so it can never block the server or flood our logs."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Final, TextIO

import anyio

logger = logging.getLogger(__name__)

_CHUNK: Final = 64 * 1024
_MAX_LINE: Final = 500
"""Characters of one stderr line that reach the log; the rest is cut."""
_MAX_PENDING: Final = 8 * 1024
"""Bytes kept of a line still waiting for its newline; a server writing without newlines cannot grow memory."""
_LINES_PER_WINDOW: Final = 20
_WINDOW_SECONDS: Final = 10.0


class StderrTail:
    """What a server wrote to stderr: the last line, for error messages; everything else goes to the log, rate-limited.

    Attributes:
        errlog: the file to hand to the server process as its stderr.
    """

    def __init__(self, server_id: str, errlog: TextIO) -> None:
        self.errlog = errlog
        self.last_line: str | None = None
        self._server_id = server_id
        self._pending = b""
        self._window_start = anyio.current_time()
        self._logged_in_window = 0
        self._suppressed = 0

    def feed(self, data: bytes) -> None:
        *lines, self._pending = (self._pending + data).split(b"\n")
        self._pending = self._pending[-_MAX_PENDING:]
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                self.last_line = line[:_MAX_LINE]
                self._log(self.last_line)

    def flush(self) -> None:
        """Log a final line that had no newline."""
        if self._pending:
            self.feed(b"\n")
        if self._suppressed:
            logger.info("MCP server %s: %d more stderr lines not logged", self._server_id, self._suppressed)
            self._suppressed = 0

    def _log(self, line: str) -> None:
        now = anyio.current_time()
        if now - self._window_start >= _WINDOW_SECONDS:
            if self._suppressed:
                logger.info("MCP server %s: %d more stderr lines not logged", self._server_id, self._suppressed)
            self._window_start, self._logged_in_window, self._suppressed = now, 0, 0
        if self._logged_in_window < _LINES_PER_WINDOW:
            self._logged_in_window += 1
            logger.info("MCP server %s stderr: %s", self._server_id, line)
        else:
            self._suppressed += 1


@asynccontextmanager
async def capture_stderr(server_id: str, secrets: object = ()) -> AsyncGenerator[StderrTail]:
    """A pipe for a server's stderr, drained by a task for as long as the context is open."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    tail = StderrTail(server_id, os.fdopen(write_fd, "w"))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, read_fd, tail)
            try:
                yield tail
            finally:
                tg.cancel_scope.cancel()
    finally:
        _read_available(read_fd, tail)  # what the process wrote just before it exited
        tail.flush()
        tail.errlog.close()
        os.close(read_fd)


async def _drain(read_fd: int, tail: StderrTail) -> None:
    while True:
        await anyio.wait_readable(read_fd)
        if not _read_available(read_fd, tail):
            return


def _read_available(read_fd: int, tail: StderrTail) -> bool:
    """Read what is in the pipe now; False at end of file."""
    while True:
        try:
            data = os.read(read_fd, _CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        tail.feed(data)
