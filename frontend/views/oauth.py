"""The pages of users' sign-ins to protected MCP servers that the browser reaches without the API.

* ``/oauth/complete``: where the orchestrator's callback sends the browser back once a sign-in ended; it says how it
  went (the outcome comes as a word from a fixed set, so a crafted link can only show our own texts).
* ``/oauth/client-metadata.json``: the assistant's client ID metadata document, which authorization servers that
  accept one fetch instead of having the assistant register (its URL is then the client ID).
"""

from __future__ import annotations

from typing import Final

from flask import Blueprint, abort, jsonify, render_template, request, session
from werkzeug.wrappers import Response

from frontend.identity import user_from_session
from frontend.state import frontend_state

blueprint = Blueprint("oauth", __name__, url_prefix="/oauth")

OUTCOMES: Final = {
    "connected": ("Signed in", "The assistant can now use this server for you. You can close this tab."),
    "failed": (
        "Sign-in failed",
        "The server did not let the assistant in. Close this tab and try again; the conversation or the servers page "
        "says why.",
    ),
    "expired": (
        "This sign-in is over",
        "It was finished, cancelled or timed out before you came back. Start it again from the conversation or the "
        "servers page.",
    ),
}
CALLBACK_PATH: Final = "/api/oauth/callback"


@blueprint.get("/complete")
def complete() -> tuple[str, int]:
    status = request.args.get("status", "")
    title, message = OUTCOMES.get(status, OUTCOMES["expired"])
    server = request.args.get("server", "")
    page = render_template(
        "oauth_complete.html",
        user=user_from_session(session),
        title=title,
        message=message,
        server=server if server.replace("-", "").replace("_", "").isalnum() else "",
        outcome=status if status in OUTCOMES else "expired",
    )
    return page, 200


@blueprint.get("/client-metadata.json")
def client_metadata() -> Response:
    public_url = frontend_state().settings.public_url
    if not public_url or not public_url.startswith("https://"):
        abort(404)  # authorization servers fetch the document themselves: it must be on a public https address
    document = {
        "client_id": f"{public_url}/oauth/client-metadata.json",
        "client_name": "MCP Assistant",
        "client_uri": public_url,
        "redirect_uris": [f"{public_url}{CALLBACK_PATH}"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    response = jsonify(document)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
