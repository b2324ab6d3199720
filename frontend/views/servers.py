"""The servers page: every MCP server with its health and tools; admins add and remove HTTP servers."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from frontend.errors import OrchestratorRefused
from frontend.identity import SignedInUser
from frontend.state import frontend_state
from frontend.views.pages import authorization_for, signed_in_user
from orchestrator.mcp.links import safe_link
from orchestrator.mcp.types import MAX_CONCURRENT_CALLS

blueprint = Blueprint("servers", __name__, url_prefix="/servers")
TRANSPORTS = ("streamable-http", "sse")
POLICIES = ("run", "ask", "deny")


@blueprint.get("")
def index() -> Response | str | tuple[str, int]:
    user = signed_in_user()
    return _servers_page(user)


@blueprint.post("")
def add() -> Response | str | tuple[str, int]:
    user = signed_in_user()
    values = {name: request.form.get(name, "").strip() for name in ("id", "url", "transport", "max_concurrent_calls")}
    if values["transport"] not in TRANSPORTS:
        return _servers_page(user, error="Choose streamable-http or sse.", form_values=values, status=422)
    body: dict[str, str | int] = {"id": values["id"], "url": values["url"], "transport": values["transport"]}
    if values["max_concurrent_calls"]:
        if not values["max_concurrent_calls"].isdigit():
            return _servers_page(user, error="Calls at once must be a whole number.", form_values=values, status=422)
        body["max_concurrent_calls"] = int(values["max_concurrent_calls"])
    try:
        frontend_state().orchestrator.call("POST", "/api/servers", authorization_for(user), json=body)
    except OrchestratorRefused as exc:
        return _servers_page(user, error=exc.detail, form_values=values, status=exc.status)
    return redirect(url_for("servers.index"))


@blueprint.get("/<server_id>/connect")
def connect(server_id: str) -> Response | str | tuple[str, int]:
    """Sign in to a protected server: off to its authorization server's page, which sends the user back to us.

    A link, not a form: the page's ``form-action 'self'`` forbids a form whose answer redirects to another site. A
    link someone else planted starts nothing they gain from: the sign-in is the visitor's own, bound to their
    session, and still needs their consent on the server's page.
    """
    user = signed_in_user()
    try:
        started: dict[str, Any] = frontend_state().orchestrator.call(
            "POST", f"/api/servers/{server_id}/authorization", authorization_for(user)
        )
    except OrchestratorRefused as exc:
        return _servers_page(user, error=exc.detail, status=exc.status)
    url = str(started.get("authorization_url", ""))
    if not safe_link(url):  # the orchestrator checks it too; a redirect is ours to vouch for
        return _servers_page(user, error="The server's sign-in page is not a secure address.", status=502)
    return redirect(url)


@blueprint.post("/<server_id>/disconnect")
def disconnect(server_id: str) -> Response | str | tuple[str, int]:
    """Sign out of a protected server: the assistant revokes and forgets the user's tokens there."""
    user = signed_in_user()
    try:
        frontend_state().orchestrator.call("DELETE", f"/api/servers/{server_id}/authorization", authorization_for(user))
    except OrchestratorRefused as exc:
        return _servers_page(user, error=exc.detail, status=exc.status)
    return redirect(url_for("servers.index"))


@blueprint.post("/<server_id>/delete")
def remove(server_id: str) -> Response | str | tuple[str, int]:
    user = signed_in_user()
    try:
        frontend_state().orchestrator.call("DELETE", f"/api/servers/{server_id}", authorization_for(user))
    except OrchestratorRefused as exc:
        return _servers_page(user, error=exc.detail, status=exc.status)
    return redirect(url_for("servers.index"))


@blueprint.post("/<server_id>/policy")
def set_policy(server_id: str) -> Response | str | tuple[str, int]:
    """An admin sets what calls of a server's tools (or of one of them) do, for everyone: run, ask or deny; or goes
    back to the default (the tool's annotations, and the servers file's ``toolPolicy``)."""
    user = signed_in_user()
    tool = request.form.get("tool", "").strip() or None
    policy = request.form.get("policy", "")
    if policy not in (*POLICIES, ""):
        return _servers_page(user, error="Choose run, ask, deny or the default.", status=422)
    target = {"server_id": server_id, **({"tool": tool} if tool else {})}
    orchestrator = frontend_state().orchestrator
    try:
        if policy:
            orchestrator.call("PUT", "/api/tool-policies", authorization_for(user), json={**target, "policy": policy})
        else:
            orchestrator.call("DELETE", "/api/tool-policies", authorization_for(user), params=target)
    except OrchestratorRefused as exc:
        if policy or exc.status != 404:  # going back to a default that was already in force is no error
            return _servers_page(user, error=exc.detail, status=exc.status)
    return redirect(url_for("servers.index") + f"#server-{server_id}")


def _servers_page(
    user: SignedInUser, *, error: str | None = None, form_values: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    orchestrator = frontend_state().orchestrator
    authorization = authorization_for(user)
    me: dict[str, Any] = orchestrator.call("GET", "/api/me", authorization)
    servers: list[dict[str, Any]] = orchestrator.call("GET", "/api/servers", authorization)
    tools: list[dict[str, Any]] = orchestrator.call("GET", "/api/tools", authorization)
    tools_by_server: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for tool in tools:
        tools_by_server[str(tool.get("server_id"))].append(tool)
    is_admin = me.get("is_admin") is True
    rules: list[dict[str, Any]] = orchestrator.call("GET", "/api/tool-policies", authorization) if is_admin else []
    page = render_template(
        "servers.html",
        user={"id": user.id, "name": user.display_name, "is_admin": is_admin},
        servers=servers,
        tools_by_server=dict(tools_by_server),
        policies=POLICIES,
        # The rules for everyone, by (server, tool or ""), preselect the forms; rules for one role are listed.
        rules={(r["server_id"], r["tool"] or ""): r["policy"] for r in rules if r["role"] is None},
        role_rules=[r for r in rules if r["role"] is not None],
        error=error,
        form_values=form_values or {"id": "", "url": "", "transport": TRANSPORTS[0]},
        transports=TRANSPORTS,
        max_concurrent_calls=MAX_CONCURRENT_CALLS,
    )
    return page, status
