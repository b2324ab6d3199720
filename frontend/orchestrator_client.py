"""Calls from the frontend to the orchestrator's HTTP API, on behalf of the signed-in user."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from frontend.errors import OrchestratorRefused, OrchestratorUnavailable
from orchestrator.telemetry.tracing import inject_trace_context

# Streams carry keepalive comments every 15 s; a JSON-mode turn can take minutes.
_PROXY_TIMEOUT = httpx.Timeout(connect=5.0, read=600.0, write=30.0, pool=10.0)
HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)


class OrchestratorClient:
    """One connection pool to the orchestrator, shared by the frontend's threads (``httpx.Client`` is thread-safe)."""

    def __init__(self, base_url: str, timeout_seconds: float) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout_seconds,
            follow_redirects=False,
            event_hooks={"request": [_add_trace_context]},
        )

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        authorization: str | None,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        """The JSON body of a successful answer (``None`` for 204).

        Raises:
            OrchestratorUnavailable: no answer within the timeout.
            OrchestratorRefused: an error answer, with the orchestrator's ``code`` and ``detail``.
        """
        headers = {"Authorization": authorization} if authorization else {}
        try:
            response = self._http.request(method, path, headers=headers, json=json, params=params)
        except httpx.HTTPError as exc:
            raise OrchestratorUnavailable(f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise _refusal(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise OrchestratorUnavailable(f"{method} {path}: the answer is not JSON") from exc

    def live(self) -> str | None:
        """``None`` when the orchestrator answers its liveness check, else why not."""
        try:
            response = self._http.get("/health/live", timeout=2.0)
        except httpx.HTTPError as exc:
            return f"the orchestrator does not answer ({type(exc).__name__})"
        return None if response.status_code == 200 else f"the orchestrator answered {response.status_code}"

    def open_stream(
        self, method: str, path: str, query: bytes, headers: Mapping[str, str], body: bytes
    ) -> httpx.Response:
        """Forward one API request and return the answer unread, for the proxy to stream back.

        Raises:
            OrchestratorUnavailable: the orchestrator could not be reached.
        """
        request = self._http.build_request(
            method, httpx.URL(path, query=query), headers=dict(headers), content=body, timeout=_PROXY_TIMEOUT
        )
        try:
            return self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise OrchestratorUnavailable(f"{method} {path}: {type(exc).__name__}") from exc


def _add_trace_context(request: httpx.Request) -> None:
    """The orchestrator's spans join the trace of the request being served (a no-op without tracing)."""
    inject_trace_context(request.headers)


def stream_body(response: httpx.Response) -> Iterator[bytes]:
    """The answer's bytes as they arrive; closing the iterator (the browser left) closes the upstream request."""
    try:
        yield from response.iter_raw()
    except httpx.HTTPError:
        return
    finally:
        response.close()


class _ErrorBody(BaseModel):
    code: str = "error"
    detail: str


def _refusal(response: httpx.Response) -> OrchestratorRefused:
    try:
        body = _ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return OrchestratorRefused(response.status_code, "error", response.reason_phrase or "error")
    return OrchestratorRefused(response.status_code, body.code, body.detail)
