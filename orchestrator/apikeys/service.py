"""Users' API keys: made, listed and revoked by their user, and turned back into their user on each request."""

from __future__ import annotations

from collections import OrderedDict

from orchestrator.apikeys.keys import ApiKeyRecord, CreatedKey, hash_secret, key_prefix, new_secret, same_hash
from orchestrator.apikeys.store import ApiKeyStore
from orchestrator.auth import Caller
from orchestrator.errors import AuthenticationFailed

_REMEMBERED_KEYS = 10_000


class ApiKeys:
    """Args:
    store: where keys (their hashes) are kept.
    max_per_user: active keys one user may have.
    """

    def __init__(self, store: ApiKeyStore, *, max_per_user: int) -> None:
        self._store = store
        self._max_per_user = max_per_user
        # hash -> user id of keys seen valid, so the rate limiter (synchronous) can count them per user.
        self._owners: OrderedDict[str, str] = OrderedDict()

    async def create(self, user_id: str, name: str) -> CreatedKey:
        """Make a key; its secret is in the result and nowhere else.

        Raises:
            TooManyApiKeys: the user has ``max_per_user`` keys already.
        """
        secret = new_secret()
        record = await self._store.add_key(user_id, name, secret, max_keys=self._max_per_user)
        return CreatedKey(record, secret.secret)

    async def list(self, user_id: str) -> list[ApiKeyRecord]:
        return await self._store.list_keys(user_id)

    async def revoke(self, user_id: str, key_id: str) -> None:
        """Raises: ApiKeyNotFound (another user's key too)."""
        await self._store.revoke_key(user_id, key_id)
        self._owners.clear()  # a revoked key must not keep its owner's rate limit bucket; rare enough to start over

    async def authenticate(self, secret: str) -> Caller:
        """The user whose active key ``secret`` is. API keys never act as admins.

        Raises:
            AuthenticationFailed: the key is malformed, unknown or revoked.
        """
        prefix = key_prefix(secret)
        if prefix is not None:
            for candidate in await self._store.candidates(prefix):
                if same_hash(candidate.hash, secret):
                    await self._store.touch(candidate.record.id)
                    self._remember(candidate.hash, candidate.user.id)
                    return Caller(candidate.user, is_admin=False, api_key_id=candidate.record.id)
        raise AuthenticationFailed("invalid API key: it is unknown or has been revoked")

    def known_owner(self, secret: str) -> str | None:
        """The user of a key this process has seen valid, without asking the database (for rate limits)."""
        if key_prefix(secret) is None:
            return None
        return self._owners.get(hash_secret(secret))

    def _remember(self, key_hash: str, user_id: str) -> None:
        self._owners[key_hash] = user_id
        self._owners.move_to_end(key_hash)
        while len(self._owners) > _REMEMBERED_KEYS:
            self._owners.popitem(last=False)
