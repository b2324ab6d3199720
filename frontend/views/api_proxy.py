"""``/api/...`` forwarded to the orchestrator with the user's token, for deployments without nginx in front.

With nginx, ``/api/`` goes straight to the orchestrator and nginx asks ``/auth/api-token`` instead; both use
:func:`frontend.api_auth.api_authorization`, so the rules are the same. ``/v1/...`` (the OpenAI-compatible API) and
``/mcp`` (the assistant as an MCP server) are forwarded as they come: their clients authenticate with an API key of
their own, never with the browser's session, so the address the API keys page gives them works here too.

The caller's address is appended to the ``X-Forwarded-For`` the request came with, as proxies do: behind an ingress
controller the orchestrator then finds the client's own address (``TRUSTED_PROXIES`` decides which hops it believes),
and whatever a client wrote there itself stays to the left of the hops added after it.
"""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from frontend.api_auth import CSRF_HEADER, api_authorization
from frontend.errors import CsrfFailed, NotSignedIn, OrchestratorUnavailable
from frontend.orchestrator_client import HOP_BY_HOP_HEADERS, stream_body
from frontend.state import frontend_state
from frontend.views.pages import json_error

blueprint = Blueprint("api_proxy", __name__)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_NOT_FORWARDED = HOP_BY_HOP_HEADERS | {"cookie", "authorization", CSRF_HEADER.lower(), "x-forwarded-for"}
_NOT_FORWARDED_FOR_CLIENTS = HOP_BY_HOP_HEADERS | {"cookie", "x-forwarded-for"}


@blueprint.route("/api/<path:path>", methods=METHODS)
def forward(path: str) -> Response:
    state = frontend_state()
    try:
        authorization = api_authorization(
            state.settings, request.method, request.headers.get("Authorization"), request.headers.get(CSRF_HEADER)
        )
    except NotSignedIn:
        return json_error(401, "unauthenticated", "sign in first")
    except CsrfFailed as exc:
        return json_error(403, "forbidden", f"CSRF check failed: {exc.reason}")
    headers = _forwarded_headers(_NOT_FORWARDED)
    if authorization:
        headers["Authorization"] = authorization
    return _relay(f"/api/{path}", headers)


@blueprint.route("/v1/<path:path>", methods=METHODS)
@blueprint.route("/mcp", methods=METHODS, defaults={"path": None})
def forward_for_clients(path: str | None) -> Response:
    """Other clients' requests, with their own ``Authorization`` (an API key) and without the browser's cookies."""
    return _relay("/mcp" if path is None else f"/v1/{path}", _forwarded_headers(_NOT_FORWARDED_FOR_CLIENTS))


def _forwarded_headers(left_out: frozenset[str]) -> dict[str, str]:
    headers = {name: value for name, value in request.headers.items() if name.lower() not in left_out}
    forwarded_for = forwarded_chain(request.headers.get("X-Forwarded-For"), request.remote_addr)
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return headers


def _relay(path: str, headers: dict[str, str]) -> Response:
    try:
        upstream = frontend_state().orchestrator.open_stream(
            request.method, path, request.query_string, headers, request.get_data()
        )
    except OrchestratorUnavailable:
        return json_error(502, "orchestrator_unavailable", "the assistant service does not answer; try again")
    response_headers = [
        (name, value) for name, value in upstream.headers.items() if name.lower() not in HOP_BY_HOP_HEADERS
    ]
    return Response(
        stream_body(upstream), status=upstream.status_code, headers=response_headers, direct_passthrough=True
    )


def forwarded_chain(forwarded_for: str | None, peer: str | None) -> str | None:
    """``X-Forwarded-For`` for the next hop: the incoming list with ``peer`` (who connected to us) appended."""
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    if peer:
        hops.append(peer)
    return ", ".join(hops) or None
