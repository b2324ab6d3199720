"""API keys: their format, how a secret becomes the hash that is stored, and the records the store returns.

A key is ``mcpa_`` followed by 43 URL-safe characters: 256 random bits. For a secret that strong one SHA-256 is the
right hash (a slow password hash protects guessable secrets; nobody guesses 256 bits), and it lets a request be
checked with one indexed lookup. The first characters (``prefix``) are stored in the clear: they find the key's
row and tell the user which key is which; the rest is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

KEY_MARKER = "mcpa_"
SECRET_BYTES = 32
PREFIX_CHARS = len(KEY_MARKER) + 8
"""Characters of a key kept in the clear: the marker and 8 random characters (48 bits)."""
MAX_KEY_CHARS = 128
"""A token longer than this is not one of our keys (and is not hashed)."""


@dataclass(frozen=True, slots=True)
class NewSecret:
    """A freshly made key: the ``secret`` is shown to its user once and never stored."""

    secret: str
    prefix: str
    hash: str


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A key as stored, without its secret."""

    id: str
    user_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    record: ApiKeyRecord
    secret: str


def new_secret() -> NewSecret:
    secret = KEY_MARKER + secrets.token_urlsafe(SECRET_BYTES)
    return NewSecret(secret=secret, prefix=secret[:PREFIX_CHARS], hash=hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_api_key(token: str) -> bool:
    """Whether a bearer token is meant as one of our API keys (a JWT never starts with the marker)."""
    return token.startswith(KEY_MARKER)


def key_prefix(secret: str) -> str | None:
    """The stored prefix of ``secret``, or ``None`` when it cannot be one of our keys."""
    if not is_api_key(secret) or len(secret) < PREFIX_CHARS or len(secret) > MAX_KEY_CHARS:
        return None
    return secret[:PREFIX_CHARS]


def same_hash(stored: str, secret: str) -> bool:
    """Compare in constant time, so the time taken says nothing about how much of a guess was right."""
    return hmac.compare_digest(stored, hash_secret(secret))
