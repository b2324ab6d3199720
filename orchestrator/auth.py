"""Who is calling: HS256 JWTs issued by the frontend, or the local user in development."""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from orchestrator.errors import AuthenticationFailed
from orchestrator.memory.types import UserIdentity

LOCAL_USER = UserIdentity(id="local", name="Local user")
_ALGORITHMS = ["HS256"]
_LEEWAY_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Caller:
    user: UserIdentity
    is_admin: bool
    api_key_id: str | None = None
    """The API key the request presented; ``None`` for the user's own sign-in (or the local user)."""


class Authenticator:
    def __init__(self, secret: str | None, admin_users: frozenset[str]) -> None:
        self._secret = secret
        self._admins = admin_users

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def authenticate(self, authorization: str | None) -> Caller:
        """Resolve the ``Authorization`` header to a caller.

        With no secret configured (development only; production settings refuse it) every request is the local
        user, who is an admin of their own laptop.

        Raises:
            AuthenticationFailed: a token is missing, malformed, expired or signed with another key.
        """
        if self._secret is None:
            if authorization:
                raise AuthenticationFailed("this server has no JWT_SECRET_KEY, so it cannot accept bearer tokens")
            return Caller(LOCAL_USER, is_admin=True)
        if not authorization:
            raise AuthenticationFailed("missing Authorization header (expected 'Bearer <token>')")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("the Authorization header must be 'Bearer <token>'")
        try:
            claims = jwt.decode(
                token.strip(),
                self._secret,
                algorithms=_ALGORITHMS,
                options={"require": ["sub", "exp"]},
                leeway=_LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthenticationFailed(f"invalid token: {exc}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 255 or "\x00" in subject:
            raise AuthenticationFailed("invalid token: 'sub' must be a non-empty string")
        name = claims.get("name")
        email = claims.get("email")
        user = UserIdentity(
            id=subject,
            name=name if isinstance(name, str) else None,
            email=email if isinstance(email, str) else None,
        )
        return Caller(user, is_admin=subject in self._admins)


class KnownUsers:
    """The identities this process has already stored, so a request does not rewrite its user row every time."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._users: dict[str, UserIdentity] = {}

    def get(self, user_id: str) -> UserIdentity | None:
        return self._users.get(user_id)

    def remember(self, user: UserIdentity) -> None:
        if len(self._users) >= self._capacity:
            self._users.clear()
        self._users[user.id] = user
