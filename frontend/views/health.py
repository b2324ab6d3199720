"""``/health`` (the process runs) and ``/ready`` (its session store and the orchestrator answer)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from frontend.state import frontend_state

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
def live() -> Response:
    return jsonify(status="ok")


@blueprint.get("/ready")
def ready() -> Response:
    state = frontend_state()
    checks = {"sessions": state.sessions.problem(), "orchestrator": state.orchestrator.live()}
    healthy = all(problem is None for problem in checks.values())
    response = jsonify(
        status="ok" if healthy else "unavailable",
        checks={name: problem or "ok" for name, problem in checks.items()},
    )
    response.status_code = 200 if healthy else 503
    return response
