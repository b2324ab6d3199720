"""Server-side sessions (Flask-Session): in Redis when ``REDIS_URL`` is set, else in files under ``DATA_DIR``.

The browser holds only a random session id, so signing out deletes the session on the server, and a stolen cookie
stops working at logout.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis
from cachelib.file import FileSystemCache
from flask import Flask
from flask_session import Session  # pyright: ignore[reportMissingTypeStubs]
from flask_session.base import (  # pyright: ignore[reportMissingTypeStubs]
    ServerSideSession,
    ServerSideSessionInterface,
)

from frontend.settings import FrontendSettings

COOKIE_NAME = "assistant_session"
KEY_PREFIX = "assistant:session:"
_REDIS_TIMEOUT_SECONDS = 5.0


class SessionStore:
    """Where the sessions live, for the readiness check."""

    def __init__(self, redis_client: redis.Redis | None, cache: FileSystemCache | None) -> None:
        self._redis = redis_client
        self._cache = cache

    def problem(self) -> str | None:
        """``None`` when the session store answers, else what is wrong with it."""
        if self._redis is not None:
            try:
                self._redis.ping()  # pyright: ignore[reportUnknownMemberType] - redis-py leaves **kwargs untyped
            except redis.RedisError as exc:
                return f"Redis does not answer ({type(exc).__name__})"
        if self._cache is not None:
            try:
                if not self._cache.set(f"{KEY_PREFIX}ready-check", "ok", timeout=60):
                    return "the session directory is not writable"
            except OSError as exc:
                return f"the session directory is not usable ({exc.strerror})"
        return None


def configure_sessions(app: Flask, settings: FrontendSettings) -> SessionStore:
    config: dict[str, Any] = {
        "SESSION_COOKIE_NAME": COOKIE_NAME,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": settings.production,
        "SESSION_PERMANENT": True,
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=settings.session_lifetime_hours),
        "SESSION_KEY_PREFIX": KEY_PREFIX,
    }
    store: SessionStore
    if settings.redis_url:
        client = redis.Redis.from_url(  # pyright: ignore[reportUnknownMemberType] - redis-py leaves **kwargs untyped
            settings.redis_url, socket_timeout=_REDIS_TIMEOUT_SECONDS, socket_connect_timeout=_REDIS_TIMEOUT_SECONDS
        )
        config |= {"SESSION_TYPE": "redis", "SESSION_REDIS": client}
        store = SessionStore(client, None)
    else:
        directory = settings.data_dir / "sessions"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        cache = FileSystemCache(str(directory), threshold=100_000, mode=0o600)
        config |= {"SESSION_TYPE": "cachelib", "SESSION_CACHELIB": cache}
        store = SessionStore(None, cache)
    for key, value in config.items():
        app.config[key] = value
    Session(app)
    return store


def regenerate_session_id(app: Flask, session: Any) -> None:
    """Give the session a new id (deleting the old one from the store), so an id planted before login is useless."""
    interface = app.session_interface
    if isinstance(interface, ServerSideSessionInterface) and isinstance(session, ServerSideSession):
        interface.regenerate(session)
