"""``create_app(settings)``: the Flask frontend with its sessions, CSRF protection, sign-in and pages."""

from __future__ import annotations

import logging
import secrets

from flask import Flask
from flask_wtf.csrf import CSRFError, CSRFProtect  # pyright: ignore[reportMissingTypeStubs]
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from frontend.errors import NotSignedIn, OrchestratorRefused, OrchestratorUnavailable
from frontend.orchestrator_client import OrchestratorClient
from frontend.providers import SignInProviders
from frontend.security import add_security_headers
from frontend.sessions import configure_sessions
from frontend.settings import FrontendSettings, get_settings
from frontend.state import FrontendState, install_state
from frontend.telemetry import install_telemetry
from frontend.views import api_keys, api_proxy, auth, chat, health, memories, oauth, servers
from frontend.views.pages import error_page, login_redirect

logger = logging.getLogger(__name__)


def create_app(settings: FrontendSettings | None = None) -> Flask:
    settings = settings or get_settings()
    app = Flask(__name__)
    secret = settings.frontend_secret_key.get_secret_value() if settings.frontend_secret_key else None
    app.config["SECRET_KEY"] = secret or secrets.token_urlsafe(32)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    # The CSRF token lives as long as the session; the session's own lifetime bounds it.
    app.config["WTF_CSRF_TIME_LIMIT"] = None
    sessions = configure_sessions(app, settings)
    csrf = CSRFProtect(app)
    install_state(
        app.extensions,
        FrontendState(
            settings=settings,
            orchestrator=OrchestratorClient(settings.orchestrator_url, settings.orchestrator_timeout_seconds),
            providers=SignInProviders(app, settings),
            sessions=sessions,
        ),
    )
    for module in (auth, chat, servers, memories, api_keys, oauth, health, api_proxy):
        app.register_blueprint(module.blueprint)
    # The proxy and nginx's token check apply the CSRF rule themselves (a header on state-changing API calls).
    csrf.exempt(api_proxy.blueprint)  # pyright: ignore[reportUnknownMemberType] - Flask-WTF is untyped
    install_telemetry(app, settings)
    app.after_request(add_security_headers)
    app.context_processor(lambda: {"dev_banner": not settings.production})
    _register_error_pages(app)
    return app


def _register_error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf_failed(_error: CSRFError) -> tuple[str, int]:
        return error_page(400, "This form expired or did not come from this site. Reload the page and try again.")

    @app.errorhandler(NotSignedIn)
    def _not_signed_in(_error: NotSignedIn) -> Response:
        # Pages only: the API proxy and the token check answer a JSON 401 themselves.
        return login_redirect()

    @app.errorhandler(OrchestratorUnavailable)
    def _orchestrator_down(error: OrchestratorUnavailable) -> tuple[str, int]:
        logger.warning("the orchestrator did not answer", extra={"error": str(error)})
        return error_page(503, "The assistant service is not answering right now. Try again in a moment.")

    @app.errorhandler(OrchestratorRefused)
    def _orchestrator_refused(error: OrchestratorRefused) -> Response | tuple[str, int]:
        if error.status == 401:
            # The session outlived what the orchestrator accepts (e.g. a rotated JWT_SECRET_KEY): sign in again.
            return login_redirect()
        logger.warning("the orchestrator refused a page's request", extra={"status": error.status, "code": error.code})
        return error_page(502, f"The assistant service refused the request: {error.detail}")

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[str, int]:
        return error_page(error.code or 500, error.description or "Something went wrong.")
