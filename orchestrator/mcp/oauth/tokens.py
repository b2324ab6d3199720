"""Presenting a user's tokens to a protected MCP server, and refreshing them before they expire.

``GrantAuth`` is the ``httpx2.Auth`` of a user's own connection to a protected server: every request gets a fresh
access token from ``TokenRefresher``, which refreshes a token shortly before it expires, one refresh at a time per
grant across replicas (``RefreshLocks``). A server that refuses the token (401 after a refresh, or 403 asking for
more scope) is not retried in a loop: the auth notes the ``challenge`` and lets the answer through, and the
connection reports that the user has to sign in again.

``ChallengeDetector`` is the auth of a connection without credentials: it only notes a 401, which tells the
registry that the server wants each user to sign in.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Final

import anyio
import httpx2
from mcp.client.auth.oauth2 import OAuthContext
from mcp.client.auth.utils import extract_field_from_www_auth, extract_scope_from_www_auth
from mcp.shared.auth import OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl, BaseModel, ValidationError

from orchestrator.mcp.oauth.grants import Grant, GrantVault
from orchestrator.mcp.oauth.locks import LockUnavailable, RefreshLocks

logger = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS: Final = 60.0
"""An access token is refreshed when it has less than this left, so no request carries one about to expire."""
TOKEN_REQUEST_TIMEOUT_SECONDS: Final = 15.0


@dataclass(frozen=True, slots=True)
class Challenge:
    """A server refused the credentials it was given: sign-in needed (401) or more scope (403)."""

    status: int
    scope: str | None = None
    reason: str = ""


class ChallengeAware(httpx2.Auth):
    """An auth that remembers the last time the server refused it."""

    challenge: Challenge | None = None

    def note(self, response: httpx2.Response, reason: str) -> None:
        self.challenge = Challenge(response.status_code, extract_scope_from_www_auth(response), reason)


class ChallengeDetector(ChallengeAware):
    """Sends requests as they are, and notes a 401 (``WWW-Authenticate: Bearer``): the server is protected."""

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        response = yield request
        if response.status_code == 401:
            self.note(response, "the server requires each user to sign in")


class NoUsableGrant(Exception):
    """The user has no grant on the server, or it can no longer be refreshed: they have to sign in."""


class RefreshFailed(Exception):
    """The authorization server could not be asked for a new token right now (down, slow, 5xx); the grant stays."""


class TokenRefresher:
    """Hands out fresh access tokens for users' grants, refreshing them under a lock.

    Args:
        vault: where grants are kept.
        locks: one refresh at a time per grant (shared by every replica with Redis).
        transport: the HTTP transport for token requests (the network by default).
        margin_seconds: a token with less than this left is refreshed before use.
    """

    def __init__(
        self,
        vault: GrantVault,
        locks: RefreshLocks,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        margin_seconds: float = REFRESH_MARGIN_SECONDS,
    ) -> None:
        self._vault = vault
        self._locks = locks
        self._transport = transport
        self._margin = margin_seconds

    async def access_token(self, user_id: str, server_id: str, *, refused: str | None = None) -> str:
        """A usable access token for the user on the server.

        Args:
            refused: a token the server just refused; if the grant still holds it, it is refreshed now.

        Raises:
            NoUsableGrant: no grant, or the authorization server would not refresh it (the user must sign in).
            RefreshFailed: the authorization server could not be reached; the grant is kept for later.
        """
        grant = await self._vault.load(user_id, server_id)
        if grant is None:
            raise NoUsableGrant("no sign-in is stored")
        stale = grant.access_token == refused or grant.expires_within(self._margin, self._vault.now())
        if not stale:
            return grant.access_token
        return (await self._refresh(user_id, server_id, grant)).access_token

    async def _refresh(self, user_id: str, server_id: str, seen: Grant) -> Grant:
        key = f"mcp-oauth-refresh:{_digest(user_id, server_id, seen.issuer)}"
        try:
            async with self._locks.hold(key):
                # Another request (or replica) may have refreshed while this one waited for the lock.
                current = await self._vault.load(user_id, server_id)
                if current is None:
                    raise NoUsableGrant("the sign-in was removed")
                if current.access_token != seen.access_token:
                    return current
                if current.refresh_token is None:
                    raise NoUsableGrant("the token expired and the server gave no refresh token")
                try:
                    refreshed = await self._request_refresh(current)
                except NoUsableGrant:
                    latest = await self._vault.load(user_id, server_id)
                    if latest is not None and latest.access_token != current.access_token:
                        return latest  # refreshed elsewhere meanwhile (a replica that could not take the lock)
                    await self._vault.delete(user_id, server_id)  # dead for good: the user signs in again
                    raise
                await self._vault.save(user_id, server_id, refreshed)
                logger.info("refreshed the token of user %s for MCP server %s", user_id, server_id)
                return refreshed
        except LockUnavailable as exc:
            raise RefreshFailed(str(exc)) from exc

    async def _request_refresh(self, grant: Grant) -> Grant:
        assert grant.refresh_token is not None
        data = {"grant_type": "refresh_token", "refresh_token": grant.refresh_token, "client_id": grant.client_id}
        if grant.resource is not None:
            data["resource"] = grant.resource  # RFC 8707: the same resource the tokens were issued for
        data, headers = _client_authentication(grant, data)
        try:
            async with httpx2.AsyncClient(
                transport=self._transport, timeout=TOKEN_REQUEST_TIMEOUT_SECONDS, follow_redirects=False
            ) as client:
                response = await client.post(grant.token_endpoint, data=data, headers=headers)
        except httpx2.HTTPError as exc:
            raise RefreshFailed(f"the token endpoint could not be reached: {type(exc).__name__}") from exc
        if response.status_code in (400, 401):
            # invalid_grant (revoked, expired, already used) or a client the server no longer knows.
            error = _error_code(response)
            raise NoUsableGrant(f"the authorization server refused to refresh the token ({error})")
        if response.status_code != 200:
            raise RefreshFailed(f"the token endpoint answered HTTP {response.status_code}")
        try:
            token = OAuthToken.model_validate_json(response.content)
        except ValidationError as exc:
            raise RefreshFailed("the token endpoint's answer is not a token response") from exc
        return grant.refreshed(token, self._vault.now())

    async def revoke(self, grant: Grant) -> bool:
        """Ask the authorization server to revoke the grant's tokens (RFC 7009); whether it said yes.

        The refresh token goes first: revoking it revokes the access tokens issued with it on most servers.
        """
        if grant.revocation_endpoint is None:
            return False
        tokens = [(grant.refresh_token, "refresh_token"), (grant.access_token, "access_token")]
        revoked = True
        async with httpx2.AsyncClient(
            transport=self._transport, timeout=TOKEN_REQUEST_TIMEOUT_SECONDS, follow_redirects=False
        ) as client:
            for token, hint in tokens:
                if token is None:
                    continue
                data, headers = _client_authentication(
                    grant, {"token": token, "token_type_hint": hint, "client_id": grant.client_id}
                )
                try:
                    response = await client.post(grant.revocation_endpoint, data=data, headers=headers)
                except httpx2.HTTPError as exc:
                    logger.warning("revoking a token at %s failed: %s", grant.revocation_endpoint, exc)
                    revoked = False
                    continue
                revoked = revoked and response.status_code == 200
        return revoked


class GrantAuth(ChallengeAware):
    """Authenticates a user's own connection to a protected server with their grant.

    A 401 gets one retry with a refreshed token; a second 401, or a refresh the authorization server refuses,
    leaves the answer as it is and notes the ``challenge``. So does a 403 with ``error="insufficient_scope"``: the
    user has to consent to more.
    """

    def __init__(self, refresher: TokenRefresher, user_id: str, server_id: str) -> None:
        self._refresher = refresher
        self._user_id = user_id
        self._server_id = server_id
        self._refusal: str | None = None

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        token = await self._token(refused=None)
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and token is not None:
            retry = await self._token(refused=token)
            if retry is not None and retry != token:
                request.headers["Authorization"] = f"Bearer {retry}"
                response = yield request
        if response.status_code == 401:
            self.note(response, self._refusal or "the server refused the stored sign-in")
        elif response.status_code == 403 and extract_field_from_www_auth(response, "error") == "insufficient_scope":
            self.note(response, "the server needs more permissions than were granted")

    async def _token(self, *, refused: str | None) -> str | None:
        """A token to send, or ``None`` to send none and let the server's 401 say what it wants."""
        try:
            with anyio.fail_after(TOKEN_REQUEST_TIMEOUT_SECONDS * 3):
                return await self._refresher.access_token(self._user_id, self._server_id, refused=refused)
        except NoUsableGrant as exc:
            self._refusal = str(exc)
        except (RefreshFailed, TimeoutError) as exc:
            # The old token may still work for a little while; otherwise the server's answer says so.
            logger.warning("MCP server %s: could not refresh the token: %s", self._server_id, exc)
            self._refusal = f"the token could not be refreshed: {exc}"
        return None if refused is None else refused


def _client_authentication(grant: Grant, data: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``data`` and headers for a token or revocation request, with the client authenticated as registered."""
    # The SDK's own token requests authenticate the client this way; reusing it keeps the two identical.
    context = OAuthContext(
        server_url=grant.token_endpoint,
        client_metadata=OAuthClientMetadata(redirect_uris=[AnyUrl("https://unused.invalid/")]),
        storage=_NoStorage(),
        redirect_handler=None,
        callback_handler=None,
        client_info=grant.client,
    )
    return context.prepare_token_auth(dict(data), {"Content-Type": "application/x-www-form-urlencoded"})


class _NoStorage:
    """The SDK's ``TokenStorage``, unused: the context above only authenticates one request."""

    async def get_tokens(self) -> OAuthToken | None:
        return None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        del tokens

    async def get_client_info(self) -> None:
        return None

    async def set_client_info(self, client_info: object) -> None:
        del client_info


def _error_code(response: httpx2.Response) -> str:
    try:
        body = _TokenError.model_validate_json(response.content)
    except ValidationError:
        return f"HTTP {response.status_code}"
    return body.error


class _TokenError(BaseModel):
    error: str


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
