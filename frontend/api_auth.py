"""Turning a browser's session into the orchestrator's ``Authorization`` header, for nginx and for our own proxy.

The JWT is minted here, per request, and added on the way to the orchestrator: it never reaches the browser, so
page scripts (and anything injected into them) cannot read it.
"""

from __future__ import annotations

from flask import session
from flask_wtf.csrf import validate_csrf  # pyright: ignore[reportMissingTypeStubs, reportUnknownVariableType]
from wtforms import ValidationError

from frontend.errors import CsrfFailed, NotSignedIn
from frontend.identity import api_token, user_from_session
from frontend.settings import FrontendSettings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"


def api_authorization(
    settings: FrontendSettings, method: str, authorization: str | None, csrf_token: str | None
) -> str | None:
    """The ``Authorization`` header to send the orchestrator for this request (``None``: send none).

    A signed-in browser gets a fresh token for its user; state-changing methods must carry the session's CSRF
    token. A caller without a session may bring its own ``Authorization`` (API clients), passed on unchanged.

    Raises:
        NotSignedIn: no session and no ``Authorization`` of its own.
        CsrfFailed: a state-changing request without the session's CSRF token.
    """
    user = user_from_session(session)
    if user is None:
        if authorization:
            return authorization
        raise NotSignedIn
    if method.upper() not in SAFE_METHODS:
        try:
            validate_csrf(csrf_token)
        except ValidationError as exc:
            raise CsrfFailed(str(exc.args[0]) if exc.args else "the CSRF token is missing or invalid") from None
    if settings.jwt_secret_key is None:
        return None  # development without JWT_SECRET_KEY: the orchestrator serves its local user
    return "Bearer " + api_token(user, settings.jwt_secret_key.get_secret_value(), settings.jwt_lifetime_seconds)
