"""The frontend's error tree; views map these to pages and status codes."""

from __future__ import annotations

from collections.abc import Sequence


class FrontendError(Exception):
    """Base of every error the frontend raises on purpose."""


class ConfigurationError(FrontendError):
    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class SignInFailed(FrontendError):
    """A provider's answer could not be trusted or did not identify a user; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotSignedIn(FrontendError):
    pass


class CsrfFailed(FrontendError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OrchestratorUnavailable(FrontendError):
    """The orchestrator did not answer (down, unreachable or too slow)."""


class OrchestratorRefused(FrontendError):
    """The orchestrator answered with an error; ``status``/``code``/``detail`` come from its JSON body."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
