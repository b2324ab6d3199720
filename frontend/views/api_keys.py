"""The API keys page: the signed-in user's keys for OpenAI clients and MCP clients; create, list and revoke."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from frontend.errors import OrchestratorRefused
from frontend.identity import SignedInUser
from frontend.state import frontend_state
from frontend.views.pages import authorization_for, signed_in_user

blueprint = Blueprint("api_keys", __name__, url_prefix="/api-keys")
MAX_NAME_CHARS = 100


@blueprint.get("")
def index() -> Response | str | tuple[str, int]:
    user = signed_in_user()
    return _page(user)


@blueprint.post("")
def create() -> Response | str | tuple[str, int]:
    user = signed_in_user()
    name = request.form.get("name", "").strip()
    try:
        created = frontend_state().orchestrator.call(
            "POST", "/api/api-keys", authorization_for(user), json={"name": name}
        )
    except OrchestratorRefused as exc:
        return _page(user, error=exc.detail, name=name, status=exc.status)
    # Rendered, not redirected: the secret is shown this once and kept nowhere, not even in the session.
    return _page(user, created=created)


@blueprint.post("/<key_id>/revoke")
def revoke(key_id: str) -> Response | str | tuple[str, int]:
    user = signed_in_user()
    try:
        frontend_state().orchestrator.call("DELETE", f"/api/api-keys/{key_id}", authorization_for(user))
    except OrchestratorRefused as exc:
        if exc.status != 404:  # already revoked: the page simply no longer lists it
            return _page(user, error=exc.detail, status=exc.status)
    return redirect(url_for("api_keys.index"))


def _page(
    user: SignedInUser,
    *,
    created: dict[str, Any] | None = None,
    error: str | None = None,
    name: str = "",
    status: int = 200,
) -> tuple[str, int]:
    keys: list[dict[str, Any]] = frontend_state().orchestrator.call("GET", "/api/api-keys", authorization_for(user))
    page = render_template(
        "api_keys.html",
        user={"id": user.id, "name": user.display_name},
        keys=keys,
        created=created,
        error=error,
        name=name,
        max_name_chars=MAX_NAME_CHARS,
        base_url=request.host_url.rstrip("/"),
    )
    return page, status
