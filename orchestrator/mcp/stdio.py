"""Run a stdio MCP server as a subprocess and exchange newline-delimited JSON-RPC messages with it.

Our own take on the SDK's ``stdio_client``, whose reader splits messages with ``(buffer + chunk).split("\\n")``:
quadratic in a message's size (a 20 MB result costs seconds of event-loop time) and without an upper bound. This
one keeps a byte buffer, looks for the newline only in what just arrived, and drops the connection when a message
grows past ``MAX_MESSAGE_BYTES``. Starting and stopping the process follows the SDK: the server gets its own process
group; on the way out its stdin is closed, it gets a grace period, then the group is terminated.

POSIX only; on Windows ``orchestrator.mcp.transport`` uses the SDK's client.
"""

from __future__ import annotations

import logging
import os
import shutil
import sysconfig
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Final, TextIO, TypeAlias

import anyio
import anyio.lowlevel
import mcp_types
from anyio.abc import AsyncResource, ByteReceiveStream, Process
from anyio.streams.memory import MemoryObjectSendStream
from mcp.client._transport import TransportStreams  # listed in that module's __all__
from mcp.client.stdio import FORCE_KILL_TIMEOUT, PROCESS_TERMINATION_TIMEOUT, get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES: Final = 32 * 1024 * 1024
"""The largest message a stdio server may send; a larger one ends the connection (and the server is restarted)."""

_WRITER_FLUSH_TIMEOUT: Final = 0.5
"""Seconds the writer gets to send messages already accepted before the server's stdin is closed."""
_KILL_REAP_TIMEOUT: Final = 2.0
"""Seconds for the event loop to notice a killed process; only an unkillable one runs this out."""
_EXIT_POLL_INTERVAL: Final = 0.01

_MessageSink: TypeAlias = MemoryObjectSendStream[SessionMessage | Exception]


class MessageTooLarge(Exception):
    """A server sent a message larger than the transport accepts; the connection was given up."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the server sent a message larger than {_size(limit)}")


def scripts_dir() -> str:
    """The folder of our own interpreter's console scripts: the virtual environment's ``bin``, if we run in one."""
    return sysconfig.get_path("scripts")


def server_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for a server process: the SDK's safe defaults, then ``env``, then our scripts folder first on
    ``PATH``, so ``python`` and console scripts installed beside us are found even when our venv is not activated.
    """
    merged = get_default_environment() | dict(env)
    ours = scripts_dir()
    path = [entry for entry in merged.get("PATH", os.defpath).split(os.pathsep) if entry]
    merged["PATH"] = os.pathsep.join([ours, *(entry for entry in path if entry != ours)])
    return merged


def find_command(command: str, path: str) -> str:
    """``command`` looked up on ``path`` when it is a bare name; unchanged when it has a folder or is not found.

    Raises nothing: a command that is not found fails when the process is started, with the usual error.
    """
    if os.sep in command or (os.altsep is not None and os.altsep in command):
        return command
    return shutil.which(command, path=path) or command


@asynccontextmanager
async def stdio_transport(
    command: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    errlog: TextIO,
    max_message_bytes: int | None = None,
) -> AsyncGenerator[TransportStreams]:
    """Start the server and yield the streams to talk to it; leaving the context stops the server.

    ``command`` is started as given (see :func:`find_command`), with exactly ``env`` as its environment. A message
    larger than ``max_message_bytes`` (by default ``MAX_MESSAGE_BYTES``) ends the connection: the read stream gets a
    ``MessageTooLarge``, then ends.

    Raises:
        OSError: the server process cannot be started.
    """
    process = await anyio.open_process([command, *args], env=dict(env), cwd=cwd, stderr=errlog, start_new_session=True)
    # No awaits until the task group is entered: a cancellation in the gap would leak the process.
    sink, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, outgoing = anyio.create_memory_object_stream[SessionMessage](0)
    writer_done = anyio.Event()
    limit = max_message_bytes if max_message_bytes is not None else MAX_MESSAGE_BYTES
    assert process.stdin is not None  # started with pipes
    assert process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    async def read_stdout() -> None:
        try:
            async with sink:
                await _read_messages(stdout, sink, limit)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # Our shutdown, the session going away, or the pipe failing: closing the sink tells the session that
            # the connection ended, which is all there is to say.
            pass
        finally:
            await _discard_rest(stdout)

    async def write_stdin() -> None:
        try:
            async with outgoing:
                async for message in outgoing:
                    line = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await stdin.send(line.encode("utf-8", errors="replace"))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # The server may still be running: end the read side so no request waits for an answer forever.
            await sink.aclose()
        finally:
            writer_done.set()

    async def shutdown() -> None:
        read_stream.close()  # unblocks the reader into discarding, so a server stuck writing can read its stdin
        write_stream.close()
        with anyio.move_on_after(_WRITER_FLUSH_TIMEOUT):
            await writer_done.wait()
        await _stop_process(process)
        for stream in (read_stream, write_stream, sink, outgoing):
            await stream.aclose()
        await anyio.lowlevel.checkpoint()  # let the pipe tasks leave through their except clauses

    async with anyio.create_task_group() as tg:
        tg.start_soon(read_stdout)
        tg.start_soon(write_stdin)
        try:
            yield read_stream, write_stream
        finally:
            # Shielded so a cancelled caller cannot leak a running server; every wait inside is bounded.
            with anyio.CancelScope(shield=True):
                await shutdown()
            tg.cancel_scope.cancel()


async def _read_messages(stdout: ByteReceiveStream, sink: _MessageSink, limit: int) -> None:
    """Send each line of ``stdout`` to ``sink`` as a message, until the end of the output or a line over ``limit``.

    Only bytes that just arrived are searched for a newline, and consumed lines are cut off the front of the buffer
    in one go per chunk, so a message costs time in proportion to its size.
    """
    buffer = bytearray()
    while True:
        try:
            chunk = await stdout.receive()
        except anyio.EndOfStream:
            return
        start, scan_from = 0, len(buffer)
        buffer += chunk
        while (end := buffer.find(b"\n", scan_from)) >= 0:
            if end - start > limit:
                break
            line = buffer[start:end]
            start = scan_from = end + 1
            if line.strip():
                await sink.send(_parse(line))
        del buffer[:start]
        if len(buffer) > limit:
            await sink.send(MessageTooLarge(limit))
            return


def _parse(line: bytearray) -> SessionMessage | Exception:
    """One message, or the reason it is not one: the session reports bad lines and carries on."""
    try:
        message = mcp_types.jsonrpc_message_adapter.validate_json(line.decode("utf-8", errors="replace"))
    except ValueError as exc:  # pydantic's ValidationError included
        return exc
    return SessionMessage(message)


async def _discard_rest(stdout: ByteReceiveStream) -> None:
    """Read and drop what the server still writes: one blocked on a full pipe could not see its stdin close."""
    with (
        anyio.CancelScope(shield=True),
        suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError),
    ):
        while True:
            await stdout.receive()


async def _stop_process(process: Process) -> None:
    """Close stdin, wait out the grace period, then terminate the whole process group (the MCP shutdown order)."""
    await _close_quietly(process.stdin)
    if not await _exited_within(process, PROCESS_TERMINATION_TIMEOUT):
        await terminate_posix_process_tree(process, FORCE_KILL_TIMEOUT)
        if not await _exited_within(process, _KILL_REAP_TIMEOUT):
            logger.warning("MCP server process %d is still alive after being killed; abandoning it", process.pid)
    # A surviving child can hold stdout open; closing it ends the discarding reader anyway.
    await _close_quietly(process.stdout)
    _close_subprocess_transport(process)


async def _close_quietly(stream: AsyncResource | None) -> None:
    if stream is not None:
        with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await stream.aclose()


async def _exited_within(process: Process, seconds: float) -> bool:
    # Polls returncode: process.wait() also waits for the pipes to close, which a surviving child can prevent.
    deadline = anyio.current_time() + seconds
    while process.returncode is None:
        if anyio.current_time() >= deadline:
            return False
        await anyio.sleep(_EXIT_POLL_INTERVAL)
    return True


def _close_subprocess_transport(process: Process) -> None:
    # As the SDK does: asyncio's subprocess transport otherwise stays open, and warns when collected, while a
    # surviving child holds a pipe. Nothing public reaches it.
    transport: object = getattr(getattr(process, "_process", None), "_transport", None)
    close: object = getattr(transport, "close", None)
    if callable(close):
        with suppress(PermissionError):
            close()


def _size(limit: int) -> str:
    mib = 1024 * 1024
    return f"{limit // mib} MiB" if limit % mib == 0 else f"{limit} bytes"
