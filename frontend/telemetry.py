"""The frontend's metrics (``GET /metrics``, the HTTP metrics the orchestrator uses too) and its traces.

With ``OTEL_ENABLED`` every request gets a span, and the ``/api`` proxy's request to the orchestrator carries the
W3C trace context, so a chat turn is one trace from the browser's request to the MCP servers.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, abort, g, request
from opentelemetry.instrumentation.flask import FlaskInstrumentor  # pyright: ignore[reportMissingTypeStubs]
from werkzeug.wrappers import Response

from frontend.settings import FrontendSettings
from orchestrator.telemetry.http import UNMATCHED_ROUTE, exposition, forwarded_by_a_proxy, observe_request
from orchestrator.telemetry.tracing import setup_tracing

blueprint = Blueprint("metrics", __name__)
_NOT_TRACED = "health,ready,metrics,static/.*"


@blueprint.get("/metrics")
def metrics() -> Response:
    # An Ingress sends every path to the frontend: what it forwards is from outside, where metrics are not shown.
    if forwarded_by_a_proxy(request.headers.keys()):
        abort(404)
    body, content_type = exposition()
    return Response(body, content_type=content_type)


def install_telemetry(app: Flask, settings: FrontendSettings) -> None:
    if settings.metrics_enabled:
        app.register_blueprint(blueprint)
        app.before_request(_start_timer)
        app.after_request(_observe)
    if settings.otel_enabled:
        setup_tracing(
            settings.frontend_otel_service_name,
            settings.otel_exporter_otlp_endpoint,
            environment=settings.environment,
        )
        FlaskInstrumentor().instrument_app(app, excluded_urls=_NOT_TRACED)  # pyright: ignore[reportUnknownMemberType]


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    """Counts the request; a streamed answer (the ``/api`` proxy) is timed to its first byte."""
    started: float | None = g.get("metrics_started")
    if started is not None and request.path != "/metrics":
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
        observe_request(request.method, route, response.status_code, time.perf_counter() - started)
    return response
