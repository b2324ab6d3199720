"""The signed-in user: kept in the server-side session, and turned into the orchestrator's short-lived JWT."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, ValidationError

LOCAL_PROVIDER = "local"
LOCAL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SESSION_KEY = "user"


class SignedInUser(BaseModel):
    """A user as the providers identify them: ``id`` is ``<provider>:<subject>``, never an e-mail address."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    provider: str
    subject: str
    name: str | None = None
    email: str | None = None

    @classmethod
    def of(cls, provider: str, subject: str, *, name: str | None = None, email: str | None = None) -> SignedInUser:
        return cls(id=f"{provider}:{subject}", provider=provider, subject=subject, name=name, email=email)

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.subject


def store_user(session: MutableMapping[str, Any], user: SignedInUser) -> None:
    session[_SESSION_KEY] = user.model_dump()


def user_from_session(session: Mapping[str, Any]) -> SignedInUser | None:
    stored = session.get(_SESSION_KEY)
    if stored is None:
        return None
    try:
        return SignedInUser.model_validate(stored)
    except ValidationError:
        return None


def api_token(user: SignedInUser, secret: str, lifetime_seconds: int, *, now: float | None = None) -> str:
    """The orchestrator's bearer token for ``user`` (HS256, short-lived, minted per request)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"sub": user.id, "iat": issued, "exp": issued + lifetime_seconds}
    if user.name:
        claims["name"] = user.name
    if user.email:
        claims["email"] = user.email
    return jwt.encode(claims, secret, algorithm="HS256")
