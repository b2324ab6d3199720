"""Helpers the page views share: who is signed in, their orchestrator token, and error pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import jsonify, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from frontend.errors import NotSignedIn
from frontend.identity import SignedInUser, api_token, user_from_session
from frontend.state import frontend_state


def signed_in_user() -> SignedInUser:
    """Raises: NotSignedIn (on a page, the app answers it by sending the visitor to sign in)."""
    user = user_from_session(session)
    if user is None:
        raise NotSignedIn
    return user


def authorization_for(user: SignedInUser) -> str | None:
    settings = frontend_state().settings
    if settings.jwt_secret_key is None:
        return None
    return "Bearer " + api_token(user, settings.jwt_secret_key.get_secret_value(), settings.jwt_lifetime_seconds)


def login_redirect() -> Response:
    path = request.full_path.rstrip("?") if request.query_string else request.path
    return redirect(url_for("auth.login") + "?" + urlencode({"next": path}))


def error_page(status: int, message: str, **context: Any) -> tuple[str, int]:
    context.setdefault("user", user_from_session(session))
    return render_template("error.html", status=status, message=message, **context), status


def json_error(status: int, code: str, detail: str) -> Response:
    """The orchestrator's error shape, ``{"detail", "code"}``, for answers the frontend gives on ``/api`` paths."""
    response = jsonify(detail=detail, code=code)
    response.status_code = status
    return response
