"""Errors of the ``/v1`` API in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``.

OpenAI's clients read ``type`` and ``code`` to tell a bad request from a bad key or a spent quota, so every error
on ``/v1`` (also authentication, validation and rate limits, which other layers raise) is answered this way.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PREFIX = "/v1/"

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
# Our codes that OpenAI spells its own way.
_CODES = {
    "unauthenticated": "invalid_api_key",
    "not_found": "not_found",
    "invalid_request": "invalid_request",
    "invalid_input": "invalid_value",
    "rate_limited": "rate_limit_exceeded",
    "token_quota_exceeded": "insufficient_quota",
}


def is_openai_path(path: str) -> bool:
    return path.startswith(PREFIX)


def error_body(message: str, *, type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def openai_error(
    status_code: int,
    code: str,
    message: str,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """One error in OpenAI's shape; validation errors (422 elsewhere) are 400 here, as OpenAI answers them."""
    if status_code == 422:
        status_code = 400
    kind = "insufficient_quota" if code == "token_quota_exceeded" else _TYPES.get(status_code, "server_error")
    if status_code == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    body = error_body(message, type=kind, code=_CODES.get(code, code), param=param)
    return JSONResponse(body, status_code=status_code, headers=headers)
