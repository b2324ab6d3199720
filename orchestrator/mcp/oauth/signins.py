"""Users' sign-ins to protected MCP servers: started from a conversation or the servers page, finished by our
callback, undone by disconnecting.

Each sign-in runs as a task of ``SignIns``' task group, bounded by a timeout, so it outlives the request that started
it (the user is away on the authorization server's pages meanwhile) but never the service. One sign-in at a time per
user and server: asking again while one waits returns the same one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self

import anyio
import httpx2
from anyio.abc import TaskGroup

from orchestrator.errors import AuthorizationRequestNotFound, ServerAuthorizationFailed
from orchestrator.mcp.oauth.flow import ClientIdentity, SignInRefused, sign_in
from orchestrator.mcp.oauth.grants import GrantVault
from orchestrator.mcp.oauth.inbox import Callback, CallbackInbox, CallbackOwner, Outcome
from orchestrator.mcp.oauth.tokens import TokenRefresher
from orchestrator.mcp.types import ServerConfig

logger = logging.getLogger(__name__)

OUTCOME_WAIT_SECONDS: Final = 30.0
"""How long our callback waits for the sign-in to turn the code into tokens before telling the user."""


@dataclass(eq=False)
class PendingSignIn:
    """A sign-in waiting for the user: ``url`` is where they sign in."""

    user_id: str
    server_id: str
    url: str = ""
    state: str = ""
    error: str | None = None
    url_ready: anyio.Event = field(default_factory=anyio.Event)
    finished: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    async def wait(self) -> None:
        """Return once the user is signed in.

        Raises:
            ServerAuthorizationFailed: the sign-in failed, timed out or was cancelled.
        """
        await self.finished.wait()
        if self.error is not None:
            raise ServerAuthorizationFailed(self.server_id, self.error)

    def cancel(self) -> None:
        """Give up on the sign-in (the user declined); a late answer from the authorization server is refused."""
        if not self.finished.is_set():
            self.error = "the sign-in was cancelled"
        self.scope.cancel()


class SignIns:
    """Runs sign-ins and disconnections. Use as ``async with SignIns(...) as sign_ins``.

    Args:
        vault: where grants and the client registrations are kept.
        refresher: revokes tokens on disconnect.
        inbox: where the authorization server's answers arrive (shared by replicas with Redis).
        identity: the assistant as an OAuth client (its redirect URI).
        timeout_seconds: how long a sign-in waits for the user.
        transport: the HTTP transport (the network by default; tests pass one).
    """

    def __init__(
        self,
        vault: GrantVault,
        refresher: TokenRefresher,
        inbox: CallbackInbox,
        identity: ClientIdentity,
        *,
        timeout_seconds: float,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self._vault = vault
        self._refresher = refresher
        self._inbox = inbox
        self._identity = identity
        self._timeout = timeout_seconds
        self._transport = transport
        self._pending: dict[tuple[str, str], PendingSignIn] = {}
        self._last_errors: dict[tuple[str, str], str] = {}
        self._task_group: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._task_group = await anyio.create_task_group().__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        group, self._task_group = self._task_group, None
        if group is not None:
            group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)

    @property
    def vault(self) -> GrantVault:
        return self._vault

    def last_error(self, user_id: str, server_id: str) -> str | None:
        """Why the user's last sign-in to the server failed, if it did (until the next one succeeds)."""
        return self._last_errors.get((user_id, server_id))

    async def begin(self, user_id: str, server: ServerConfig, *, scope: str | None = None) -> PendingSignIn:
        """Start signing the user in to ``server``; returns once the sign-in page's URL is known.

        Raises:
            ServerAuthorizationFailed: discovery or registration failed before there was a page to show.
        """
        if self._task_group is None:
            raise RuntimeError("SignIns is not running; use it as 'async with SignIns(...)'")
        key = (user_id, server.id)
        pending = self._pending.get(key)
        if pending is None or pending.finished.is_set():
            pending = PendingSignIn(user_id, server.id)
            self._pending[key] = pending
            self._task_group.start_soon(self._run, pending, server, scope, name=f"sign-in-{server.id}")
        async with anyio.create_task_group() as group:

            async def stop_when(event: anyio.Event) -> None:
                await event.wait()
                group.cancel_scope.cancel()

            group.start_soon(stop_when, pending.url_ready)
            group.start_soon(stop_when, pending.finished)
        if not pending.url:
            raise ServerAuthorizationFailed(server.id, pending.error or "the sign-in ended before it began")
        return pending

    async def complete(self, user_id: str, callback: Callback) -> tuple[CallbackOwner, Outcome]:
        """Hand the authorization server's answer to the waiting sign-in, and say how the sign-in ended.

        Raises:
            AuthorizationRequestNotFound: no sign-in of this user waits for the answer's ``state``.
        """
        owner = await self._inbox.deliver(user_id, callback)
        outcome = await self._inbox.outcome(callback.state, OUTCOME_WAIT_SECONDS)
        if outcome is None:
            outcome = Outcome("failed", "the sign-in did not finish in time")
        return owner, outcome

    async def signed_in(self, user_id: str, server_id: str) -> bool:
        return await self._vault.load(user_id, server_id) is not None

    async def disconnect(self, user_id: str, server_id: str) -> bool:
        """Forget the user's grant on the server, asking its authorization server to revoke the tokens first.

        Returns whether there was a grant. The grant is deleted even when revocation fails (the server may be down);
        the tokens then expire on their own.
        """
        pending = self._pending.pop((user_id, server_id), None)
        if pending is not None:
            pending.cancel()
        grants = await self._vault.delete(user_id, server_id)
        for grant in grants:
            with anyio.move_on_after(30):
                if not await self._refresher.revoke(grant):
                    logger.info("MCP server %s: tokens of user %s deleted, not revoked", server_id, user_id)
        self._last_errors.pop((user_id, server_id), None)
        return bool(grants)

    async def _run(self, pending: PendingSignIn, server: ServerConfig, scope: str | None) -> None:
        owner = CallbackOwner(pending.user_id, server.id)
        key = (pending.user_id, server.id)

        async def present(url: str, state: str) -> None:
            await self._inbox.expect(state, owner, self._timeout)
            pending.url, pending.state = url, state
            pending.url_ready.set()

        async def receive(state: str) -> Callback:
            callback = await self._inbox.receive(state, self._timeout)
            if callback is None:
                raise SignInRefused(f"nobody signed in within {self._timeout:g}s")
            return callback

        outcome = Outcome("failed", "the sign-in was cancelled")
        try:
            with pending.scope, anyio.fail_after(self._timeout + 60):
                grant = await sign_in(
                    server,
                    self._identity,
                    self._vault,
                    present=present,
                    receive=receive,
                    scope=scope,
                    transport=self._transport,
                )
                await self._vault.save(pending.user_id, server.id, grant)
                outcome = Outcome("connected", f"signed in to {server.id}")
                self._last_errors.pop(key, None)
                logger.info("user %s signed in to MCP server %s", pending.user_id, server.id)
        except (SignInRefused, TimeoutError) as exc:
            reason = str(exc) or f"nobody signed in within {self._timeout:g}s"
            outcome = Outcome("failed", reason)
            pending.error = reason
            self._last_errors[key] = reason
            logger.info("sign-in of user %s to MCP server %s failed: %s", pending.user_id, server.id, reason)
        except Exception as exc:  # task boundary: a sign-in must never take the service down
            logger.exception("sign-in of user %s to MCP server %s failed", pending.user_id, server.id)
            outcome = Outcome("failed", f"unexpected error: {type(exc).__name__}")
            pending.error = outcome.message
            self._last_errors[key] = outcome.message
        finally:
            if pending.error is None and outcome.status != "connected":
                pending.error = outcome.message
            with anyio.CancelScope(shield=True):
                if pending.state:
                    await self._inbox.report(pending.state, outcome)
                    await self._inbox.forget(pending.state)
            pending.finished.set()
            if self._pending.get(key) is pending:
                del self._pending[key]


__all__ = ["AuthorizationRequestNotFound", "PendingSignIn", "SignIns"]
