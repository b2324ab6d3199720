"""Short, human-readable descriptions of why a server connection failed, without credentials."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, cast

import anyio
import httpx2
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED
from pydantic import ValidationError

from orchestrator.mcp.redaction import config_secrets, public_url, redact
from orchestrator.mcp.stdio import MessageTooLarge
from orchestrator.mcp.types import ServerConfig

_MAX_LENGTH: Final = 300

EXPECTED_FAILURES: Final = (
    OSError,  # includes ConnectionError and TimeoutError
    MCPError,
    httpx2.HTTPError,
    httpx2.StreamError,
    ValidationError,
    SubscriptionLost,
    MessageTooLarge,
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)
"""What a connection to a server that is down, unreachable or misbehaving raises; anything else is our bug."""


def leaf_exceptions(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside ``exc``, with exception groups (which anyio task groups add) flattened."""
    if isinstance(exc, BaseExceptionGroup):
        group = cast("BaseExceptionGroup[BaseException]", exc)
        for inner in group.exceptions:
            yield from leaf_exceptions(inner)
    else:
        yield exc


def is_expected_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is an ordinary connection failure rather than a bug worth a traceback."""
    return all(isinstance(leaf, EXPECTED_FAILURES) for leaf in leaf_exceptions(exc))


def describe_failure(exc: BaseException, config: ServerConfig, *, stderr_line: str | None = None) -> str:
    """One line saying what went wrong with ``config``'s server, with its credentials masked.

    Args:
        exc: what was raised; exception groups are looked into.
        config: the server, for its command or URL and the secrets to mask.
        stderr_line: the last line a stdio server wrote to stderr, added when the server went away.
    """
    leaves = [leaf for leaf in leaf_exceptions(exc) if isinstance(leaf, Exception)]  # not cancellations
    # "Connection closed" is the consequence; a more specific leaf, if any, is the cause.
    specific = [leaf for leaf in leaves if not _is_closed(leaf)]
    leaf = (specific or leaves or [exc])[0]
    message = _describe(leaf, config)
    if stderr_line and _is_closed(leaf):
        message = f"{message}; its last stderr line: {stderr_line}"
    if config.url is not None:
        message = message.replace(config.url, public_url(config.url))
    message = redact(message, config_secrets(config))
    return message if len(message) <= _MAX_LENGTH else message[: _MAX_LENGTH - 1] + "…"


def _is_closed(exc: BaseException) -> bool:
    return (isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED) or isinstance(
        exc, anyio.EndOfStream | anyio.BrokenResourceError | anyio.ClosedResourceError | SubscriptionLost
    )


def _describe(exc: BaseException, config: ServerConfig) -> str:
    where = public_url(config.url) if config.url is not None else config.command
    match exc:
        case _ if _is_closed(exc):
            if config.transport == "stdio":
                return "the server process exited or closed its output"
            return "the server closed the connection"
        case FileNotFoundError() | PermissionError() if config.transport == "stdio":
            return f"cannot start {exc.filename or config.command!r}: {exc.strerror}"
        case httpx2.HTTPStatusError():
            status = exc.response.status_code
            hint = " (check the server's 'headers')" if status in (401, 403) else ""
            return f"{where} answered HTTP {status} {exc.response.reason_phrase}{hint}"
        case httpx2.TimeoutException():
            return f"{where} did not answer in time"
        case httpx2.ConnectError():
            return f"cannot connect to {where}: {exc}"
        case httpx2.HTTPError():
            return f"HTTP error talking to {where}: {type(exc).__name__}: {exc}"
        case MessageTooLarge():
            return str(exc)
        case MCPError():
            return f"the server answered with MCP error {exc.code}: {exc.error.message}"
        case ValidationError():
            return "the server sent a message that is not valid MCP"
        case TimeoutError():
            return str(exc) or "timed out"
        case OSError():
            return f"{type(exc).__name__}: {exc.strerror or exc}"
        case _:
            return f"{type(exc).__name__}: {exc}"
