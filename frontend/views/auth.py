"""Sign-in and sign-out: OAuth providers, the development-only local sign-in, and the token check for nginx."""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from frontend.api_auth import CSRF_HEADER, api_authorization
from frontend.errors import CsrfFailed, NotSignedIn, SignInFailed
from frontend.identity import LOCAL_NAME_PATTERN, LOCAL_PROVIDER, SignedInUser, store_user, user_from_session
from frontend.redirects import safe_next_path
from frontend.sessions import regenerate_session_id
from frontend.state import frontend_state
from frontend.views.pages import json_error

blueprint = Blueprint("auth", __name__)
logger = logging.getLogger(__name__)

_NEXT_KEY = "login_next"
API_AUTHORIZATION_HEADER = "X-Api-Authorization"
# Set by nginx on its auth subrequest. Browsers do not let page scripts send Sec-* headers, so a script (an injected
# one included) cannot ask this endpoint for the token, even on an origin where nginx does not hide the path.
AUTH_REQUEST_HEADER = "Sec-Auth-Request"


@blueprint.get("/login")
def login() -> Response | str:
    next_path = safe_next_path(request.args.get("next"))
    if user_from_session(session) is not None:
        return redirect(next_path)
    state = frontend_state()
    errors = get_flashed_messages()
    return render_template(
        "login.html",
        user=None,
        providers=state.providers.providers,
        next_path=next_path,
        local_signin_enabled=state.settings.local_signin,
        error=errors[0] if errors else None,
    )


@blueprint.get("/login/<provider>")
def start(provider: str) -> Response:
    state = frontend_state()
    chosen = state.providers.get(provider)
    if chosen is None:
        abort(404)
    session[_NEXT_KEY] = safe_next_path(request.args.get("next"))
    try:
        return state.providers.start(chosen, _callback_url(chosen.slug))
    except SignInFailed as exc:
        logger.warning("sign-in could not start", extra={"provider": chosen.slug, "reason": exc.reason})
        flash(exc.reason)
        return redirect(url_for("auth.login"))


@blueprint.get("/auth/<provider>/callback")
def callback(provider: str) -> Response:
    state = frontend_state()
    chosen = state.providers.get(provider)
    if chosen is None:
        abort(404)
    try:
        user = state.providers.finish(chosen)
    except SignInFailed as exc:
        logger.warning("sign-in refused", extra={"provider": chosen.slug, "reason": exc.reason})
        flash(f"Sign-in failed: {exc.reason}")
        return redirect(url_for("auth.login"))
    logger.info("signed in", extra={"user_id": user.id})
    return _sign_in(user)


@blueprint.post("/login/local")
def local_login() -> Response:
    if not frontend_state().settings.local_signin:
        abort(404)
    name = request.form.get("name", "").strip()
    session[_NEXT_KEY] = safe_next_path(request.form.get("next"))
    if not LOCAL_NAME_PATTERN.fullmatch(name):
        flash("A local name is 1 to 64 letters, digits, dots, dashes or underscores.")
        return redirect(url_for("auth.login"))
    return _sign_in(SignedInUser.of(LOCAL_PROVIDER, name, name=name))


@blueprint.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))


@blueprint.get("/auth/api-token")
def api_token_check() -> Response:
    """nginx's ``auth_request`` for ``/api/``: 204 with the orchestrator's ``Authorization`` in a response header."""
    if request.headers.get(AUTH_REQUEST_HEADER) != "1":
        abort(404)
    method = request.headers.get("X-Original-Method", request.method)
    try:
        authorization = api_authorization(
            frontend_state().settings, method, request.headers.get("Authorization"), request.headers.get(CSRF_HEADER)
        )
    except NotSignedIn:
        return json_error(401, "unauthenticated", "sign in first")
    except CsrfFailed as exc:
        return json_error(403, "forbidden", f"CSRF check failed: {exc.reason}")
    response = Response(status=204)
    if authorization:
        response.headers[API_AUTHORIZATION_HEADER] = authorization
    response.headers["Cache-Control"] = "no-store"
    return response


def _sign_in(user: SignedInUser) -> Response:
    next_path = safe_next_path(session.get(_NEXT_KEY))
    session.clear()
    store_user(session, user)
    regenerate_session_id(current_app, session)
    return redirect(next_path)


def _callback_url(provider: str) -> str:
    public_url = frontend_state().settings.public_url
    if public_url:
        return public_url + url_for("auth.callback", provider=provider)
    return url_for("auth.callback", provider=provider, _external=True)
