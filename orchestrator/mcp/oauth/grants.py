"""``Grant``: what a user's sign-in to a protected MCP server gave us, and ``GrantVault``, which keeps grants sealed.

A grant is stored per (user, server, issuer): the secrets in it (access token, refresh token, client secret) are
encrypted before they reach the database, and a grant the current keys cannot open counts as no grant (the user signs
in again) rather than as an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import ValidationError

from orchestrator.mcp.oauth.cipher import SealedDataUnreadable, TokenCipher
from orchestrator.memory.grants import OAuthGrantStore, StoredClient, StoredGrant

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Grant:
    """Tokens from one authorization server, and what refreshing and revoking them needs."""

    issuer: str
    access_token: str
    token_endpoint: str
    client_id: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    scope: str | None = None
    revocation_endpoint: str | None = None
    resource: str | None = None  # the RFC 8707 resource the tokens were requested for
    client_secret: str | None = None
    token_endpoint_auth_method: str | None = None

    def expires_within(self, seconds: float, now: datetime) -> bool:
        """Whether the access token expires within ``seconds`` of ``now`` (never, when its lifetime is unknown)."""
        return self.expires_at is not None and self.expires_at - now <= timedelta(seconds=seconds)

    def refreshed(self, token: OAuthToken, now: datetime) -> Grant:
        """This grant with the tokens of a refresh response (RFC 6749 §6: an omitted refresh token or scope stays)."""
        return replace(
            self,
            access_token=token.access_token,
            refresh_token=token.refresh_token or self.refresh_token,
            expires_at=expiry(token, now),
            scope=token.scope or self.scope,
        )

    @property
    def client(self) -> OAuthClientInformationFull:
        """The client these tokens were issued to, as the SDK's token requests need it."""
        return OAuthClientInformationFull(
            client_id=self.client_id,
            client_secret=self.client_secret,
            token_endpoint_auth_method=self.token_endpoint_auth_method,
        )


def expiry(token: OAuthToken, now: datetime) -> datetime | None:
    return now + timedelta(seconds=token.expires_in) if token.expires_in is not None else None


class GrantVault:
    """Users' grants and the assistant's client registrations, sealed with ``cipher`` in ``store``."""

    def __init__(self, store: OAuthGrantStore, cipher: TokenCipher, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._cipher = cipher
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    async def load(self, user_id: str, server_id: str) -> Grant | None:
        """The user's current grant on the server; ``None`` when there is none or it cannot be opened."""
        stored = await self._store.get_grant(user_id, server_id)
        if stored is None:
            return None
        try:
            return self._open(stored)
        except SealedDataUnreadable:
            logger.warning(
                "the sign-in of user %s to MCP server %s cannot be decrypted (was TOKEN_ENCRYPTION_KEY changed?); "
                "they will be asked to sign in again",
                user_id,
                server_id,
            )
            return None

    async def save(self, user_id: str, server_id: str, grant: Grant) -> None:
        secrets = {"access_token": grant.access_token}
        if grant.refresh_token is not None:
            secrets["refresh_token"] = grant.refresh_token
        if grant.client_secret is not None:
            secrets["client_secret"] = grant.client_secret
        await self._store.put_grant(
            StoredGrant(
                user_id=user_id,
                server_id=server_id,
                issuer=grant.issuer,
                sealed=self._cipher.seal(secrets),
                expires_at=grant.expires_at,
                scope=grant.scope,
                token_endpoint=grant.token_endpoint,
                revocation_endpoint=grant.revocation_endpoint,
                resource=grant.resource,
                client_id=grant.client_id,
                token_endpoint_auth_method=grant.token_endpoint_auth_method,
                updated_at=self._clock(),
            )
        )

    async def delete(self, user_id: str, server_id: str) -> list[Grant]:
        """Delete the user's grants on the server; returns those that could be opened (to revoke them)."""
        deleted = await self._store.delete_grants(user_id, server_id)
        opened: list[Grant] = []
        for stored in deleted:
            try:
                opened.append(self._open(stored))
            except SealedDataUnreadable:
                logger.warning("a deleted sign-in of user %s to %s could not be opened to revoke", user_id, server_id)
        return opened

    async def granted_servers(self, user_id: str) -> list[str]:
        return await self._store.granted_servers(user_id)

    async def load_client(self, server_id: str) -> OAuthClientInformationFull | None:
        stored = await self._store.get_client(server_id)
        if stored is None:
            return None
        try:
            return OAuthClientInformationFull.model_validate(self._cipher.open(stored.sealed))
        except (SealedDataUnreadable, ValidationError):
            logger.warning("the client registration for MCP server %s cannot be read; registering again", server_id)
            return None

    async def save_client(self, server_id: str, client: OAuthClientInformationFull) -> None:
        await self._store.put_client(
            StoredClient(
                server_id=server_id,
                issuer=client.issuer,
                sealed=self._cipher.seal(client.model_dump(mode="json", exclude_none=True)),
                updated_at=self._clock(),
            )
        )

    def _open(self, stored: StoredGrant) -> Grant:
        secrets = self._cipher.open(stored.sealed)
        access_token = secrets.get("access_token")
        if not isinstance(access_token, str):
            raise SealedDataUnreadable("no access token in the sealed grant")
        refresh_token = secrets.get("refresh_token")
        client_secret = secrets.get("client_secret")
        return Grant(
            issuer=stored.issuer,
            access_token=access_token,
            refresh_token=refresh_token if isinstance(refresh_token, str) else None,
            expires_at=stored.expires_at,
            scope=stored.scope,
            token_endpoint=stored.token_endpoint,
            revocation_endpoint=stored.revocation_endpoint,
            resource=stored.resource,
            client_id=stored.client_id,
            client_secret=client_secret if isinstance(client_secret, str) else None,
            token_endpoint_auth_method=stored.token_endpoint_auth_method,
        )
