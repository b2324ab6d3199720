"""The chat page: the user's conversations and, at ``/c/<id>``, one of them opened."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from werkzeug.wrappers import Response

from frontend.errors import OrchestratorRefused
from frontend.state import frontend_state
from frontend.views.pages import authorization_for, error_page, signed_in_user

blueprint = Blueprint("chat", __name__)
LIST_LIMIT = 200


@blueprint.get("/")
def index() -> Response | str | tuple[str, int]:
    return _chat_page(None)


@blueprint.get("/c/<conversation_id>")
def conversation(conversation_id: str) -> Response | str | tuple[str, int]:
    return _chat_page(conversation_id)


def _chat_page(conversation_id: str | None) -> Response | str | tuple[str, int]:
    user = signed_in_user()
    orchestrator = frontend_state().orchestrator
    authorization = authorization_for(user)
    opened: dict[str, Any] | None = None
    if conversation_id is not None:
        try:
            opened = orchestrator.call("GET", f"/api/conversations/{conversation_id}", authorization)
        except OrchestratorRefused as exc:
            if exc.status == 404:
                return error_page(404, "This conversation does not exist, or it is not yours.")
            raise
    conversations: list[dict[str, Any]] = orchestrator.call(
        "GET", "/api/conversations", authorization, params={"limit": LIST_LIMIT}
    )
    public_user = {"id": user.id, "name": user.display_name}
    return render_template(
        "chat.html",
        user=user,
        conversations=conversations,
        conversation=opened,
        initial_state={"conversations": conversations, "conversation": opened, "user": public_user},
    )
