"""Encryption of the secrets users grant to MCP servers (tokens, client secrets) before they reach the database.

``TOKEN_ENCRYPTION_KEY`` holds one or more comma-separated secrets; each becomes a Fernet key (AES-128-CBC with an
HMAC-SHA256) through HKDF, so any long random string works as a key. The first key encrypts; every key decrypts,
so a key is rotated by putting the new one first and dropping the old one once nothing sealed with it is left.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

logger = logging.getLogger(__name__)

_HKDF_INFO: Final = b"mcp-assistant/mcp-oauth-tokens/v1"
DEV_KEY_FILE: Final = "token-encryption.key"


class SealedDataUnreadable(Exception):
    """Sealed data cannot be opened with any configured key (the key changed, or the data was altered)."""


class TokenCipher:
    """Seals JSON-able mappings into opaque text and opens them again.

    Args:
        keys: the secrets, current one first.

    Raises:
        ValueError: no key, or an empty one.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        cleaned = [key.strip() for key in keys]
        if not cleaned or any(not key for key in cleaned):
            raise ValueError("at least one non-empty key is needed")
        self._fernet = MultiFernet([Fernet(_derive(key)) for key in cleaned])

    @classmethod
    def from_setting(cls, value: str) -> TokenCipher:
        """A cipher for ``TOKEN_ENCRYPTION_KEY``: comma-separated keys, the current one first."""
        return cls([key for key in value.split(",") if key.strip()])

    def seal(self, data: Mapping[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data, separators=(",", ":")).encode()).decode("ascii")

    def open(self, sealed: str) -> dict[str, Any]:
        """Raises: SealedDataUnreadable."""
        try:
            value: object = json.loads(self._fernet.decrypt(sealed.encode("ascii")))
        except (InvalidToken, UnicodeEncodeError, ValueError) as exc:
            raise SealedDataUnreadable("sealed data cannot be opened with the configured keys") from exc
        if not isinstance(value, dict):
            raise SealedDataUnreadable("sealed data does not hold an object")
        return cast(dict[str, Any], value)


def development_key(data_dir: Path) -> str:
    """The key kept in ``data_dir`` for development (made once, readable by its owner only)."""
    path = data_dir / DEV_KEY_FILE
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = ""
    if key:
        return key
    key = secrets.token_urlsafe(48)
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(key + "\n")
    logger.info("made a development key for stored MCP sign-ins in %s (set TOKEN_ENCRYPTION_KEY in production)", path)
    return key


def _derive(secret: str) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(key)
