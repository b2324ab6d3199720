"""The memories page: what the assistant remembers about the signed-in user; search, add and delete."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from frontend.errors import OrchestratorRefused
from frontend.identity import SignedInUser
from frontend.state import frontend_state
from frontend.views.pages import authorization_for, signed_in_user

blueprint = Blueprint("memories", __name__, url_prefix="/memories")
PAGE_SIZE = 100
MAX_CHARS = 2_000


@blueprint.get("")
def index() -> Response | str | tuple[str, int]:
    user = signed_in_user()
    return _memories_page(user, query=request.args.get("q", "").strip()[:MAX_CHARS])


@blueprint.post("")
def add() -> Response | str | tuple[str, int]:
    user = signed_in_user()
    text = request.form.get("text", "").strip()
    try:
        frontend_state().orchestrator.call("POST", "/api/memories", authorization_for(user), json={"text": text})
    except OrchestratorRefused as exc:
        return _memories_page(user, error=exc.detail, text=text, status=exc.status)
    return redirect(url_for("memories.index"))


@blueprint.post("/<memory_id>/delete")
def remove(memory_id: str) -> Response | str | tuple[str, int]:
    user = signed_in_user()
    try:
        frontend_state().orchestrator.call("DELETE", f"/api/memories/{memory_id}", authorization_for(user))
    except OrchestratorRefused as exc:
        if exc.status != 404:  # already gone: the page simply no longer lists it
            return _memories_page(user, error=exc.detail, status=exc.status)
    return redirect(url_for("memories.index"))


def _memories_page(
    user: SignedInUser, *, query: str = "", error: str | None = None, text: str = "", status: int = 200
) -> tuple[str, int]:
    params: dict[str, str | int] = {"limit": PAGE_SIZE}
    if query:
        params["q"] = query
    memories: list[dict[str, Any]] = []
    disabled = False
    try:
        memories = frontend_state().orchestrator.call("GET", "/api/memories", authorization_for(user), params=params)
    except OrchestratorRefused as exc:
        if exc.code != "memory_disabled":
            raise
        disabled = True
    page = render_template(
        "memories.html",
        user={"id": user.id, "name": user.display_name},
        memories=memories,
        query=query,
        error=error,
        text=text,
        disabled=disabled,
        max_chars=MAX_CHARS,
    )
    return page, status
