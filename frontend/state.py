"""What the frontend keeps for its lifetime, reachable from any request through ``frontend_state()``."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from frontend.orchestrator_client import OrchestratorClient
from frontend.providers import SignInProviders
from frontend.sessions import SessionStore
from frontend.settings import FrontendSettings

_EXTENSION = "assistant_frontend"


@dataclass(frozen=True, slots=True)
class FrontendState:
    settings: FrontendSettings
    orchestrator: OrchestratorClient
    providers: SignInProviders
    sessions: SessionStore


def frontend_state() -> FrontendState:
    state: FrontendState = current_app.extensions[_EXTENSION]
    return state


def install_state(extensions: dict[str, object], state: FrontendState) -> None:
    extensions[_EXTENSION] = state
