"""Rate limits on ``/api/...``, ``/v1/...`` and ``/mcp`` with slowapi: per signed-in user (or API key's user), or
per client IP for requests without a valid token.

Counters live in Redis (``REDIS_URL``), so every replica counts against the same limits; without Redis they live in
the process. When Redis stops answering, slowapi logs it and counts in memory (per replica) instead of failing
requests, and goes back to Redis by itself once it answers (it checks again after 2, 4, 8 ... 64 seconds).

The client IP is the address of the direct peer, unless that peer is one of ``TRUSTED_PROXIES``: then it is the
last address in ``X-Forwarded-For`` that is not a trusted proxy. A client writing its own ``X-Forwarded-For`` only
adds entries to the left of the ones our proxies append, so it cannot choose whose limit applies.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import time
from collections.abc import Sequence

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.apikeys.keys import is_api_key
from orchestrator.errors import AuthenticationFailed
from orchestrator.openai_api.errors import is_openai_path, openai_error
from orchestrator.settings import Settings

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, networks: Sequence[str]) -> None:
        self._networks: list[Network] = [ipaddress.ip_network(network, strict=False) for network in networks]

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address: the peer, or the nearest untrusted hop of ``X-Forwarded-For`` behind trusted ones."""
        if peer is None:
            return "unknown"
        if not forwarded_for or not self.trusted(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop
        return hops[0] if hops else peer


LIMITED_PATHS = ("/api/", "/v1/", "/mcp")


def rate_limit_key(request: Request, proxies: TrustedProxies) -> str:
    """``user:<id>`` for a request with a valid token (or the local user), else ``ip:<client address>``.

    An API key counts for its user (``RateLimitMiddleware`` checks a key it has not seen before asking).
    """
    state = getattr(request.app.state, "assistant", None)
    if state is not None:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        owner = state.api_keys.known_owner(token.strip()) if scheme.lower() == "bearer" else None
        if owner is not None:
            return f"user:{owner}"
        try:
            caller = state.auth.authenticate(request.headers.get("authorization"))
        except AuthenticationFailed:
            pass
        else:
            return f"user:{caller.user.id}"
    peer = request.client.host if request.client else None
    return "ip:" + proxies.client_ip(peer, request.headers.get("x-forwarded-for"))


class ApiLimiter(Limiter):
    """slowapi's limiter, checked by :class:`RateLimitMiddleware` for every ``/api/`` request.

    slowapi's own middleware finds each request's endpoint in ``app.routes`` to decide whether to limit it, and
    FastAPI now includes routers lazily, so it finds none and limits nothing. The limits here are application-wide
    (one budget for the whole API), so the endpoint does not matter: the check is slowapi's own, given the API.
    """

    def check(self, request: Request) -> None:
        """Count the request against the caller's limits.

        Raises:
            RateLimitExceeded: a limit is spent.
        """
        self._check_request_limit(request, _api, in_middleware=True)


def _api() -> None:
    """Stands for the whole API where slowapi expects an endpoint (its name keys exemptions; none here)."""


class RateLimitMiddleware:
    """Answers 429 (with ``Retry-After``) to ``/api/``, ``/v1/`` and ``/mcp`` requests over their limits.

    With Redis the check runs on a worker thread: slowapi's storage is synchronous, and a Redis that stopped
    answering would otherwise hold the event loop for up to ``REDIS_TIMEOUT_SECONDS``.
    """

    def __init__(self, app: ASGIApp, *, limiter: ApiLimiter, in_thread: bool) -> None:
        self.app = app
        self._limiter = limiter
        self._in_thread = in_thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(LIMITED_PATHS) or not self._limiter.enabled:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        await _learn_key_owner(request)
        try:
            if self._in_thread:
                await anyio.to_thread.run_sync(self._limiter.check, request)
            else:
                self._limiter.check(request)
        except RateLimitExceeded as exc:
            response = _rate_limited(self._limiter, request, exc)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _learn_key_owner(request: Request) -> None:
    """Check an API key this process has not seen yet, so its first request counts for its user too."""
    state = getattr(request.app.state, "assistant", None)
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if state is None or scheme.lower() != "bearer" or not is_api_key(token.strip()):
        return
    if state.api_keys.known_owner(token.strip()) is None:
        with contextlib.suppress(AuthenticationFailed):  # counted for its client address, refused further in
            await state.api_keys.authenticate(token.strip())


def install_rate_limits(app: FastAPI, settings: Settings) -> ApiLimiter:
    """Limit every ``/api/``, ``/v1/`` and ``/mcp`` request (``app.state.limiter``); probes and ``/metrics`` are not."""
    proxies = TrustedProxies(settings.trusted_proxies)
    storage_options: dict[str, object] = {"key_prefix": f"{settings.redis_key_prefix}ratelimit"}
    if settings.redis_url:
        storage_options |= {
            "socket_connect_timeout": settings.redis_timeout_seconds,
            "socket_timeout": settings.redis_timeout_seconds,
        }

    def key(request: Request) -> str:
        return rate_limit_key(request, proxies)

    limiter = ApiLimiter(
        key_func=key,
        application_limits=[f"{settings.rate_limit_per_minute}/minute", f"{settings.rate_limit_per_hour}/hour"],
        storage_uri=settings.redis_url or "memory://",
        storage_options=storage_options,  # pyright: ignore[reportArgumentType] - slowapi declares dict[str, str]
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        enabled=settings.rate_limit_enabled,
        # A moving window: a fixed one would let a client spend two limits' worth around a window's edge.
        strategy="moving-window",
    )
    app.state.limiter = limiter
    app.add_middleware(RateLimitMiddleware, limiter=limiter, in_thread=settings.redis_url is not None)
    return limiter


def _rate_limited(limiter: Limiter, request: Request, exc: RateLimitExceeded) -> JSONResponse:
    if exc.limit is None:
        if is_openai_path(request.url.path):
            return openai_error(429, "rate_limited", "too many requests")
        return JSONResponse({"detail": "too many requests", "code": "rate_limited"}, status_code=429)
    item = exc.limit.limit
    retry_after = item.get_expiry()
    hit = getattr(request.state, "view_rate_limit", None)
    if hit is not None:
        try:
            reset_at, _remaining = limiter.limiter.get_window_stats(item, *hit[1])
            retry_after = max(1, math.ceil(reset_at - time.time()))
        except Exception:  # the storage failed between the hit and now: the window's length is a safe answer
            logger.debug("could not read the rate limit window", exc_info=True)
    detail = f"too many requests ({item}); try again in {retry_after} s"
    if is_openai_path(request.url.path):
        return openai_error(429, "rate_limited", detail, headers={"Retry-After": str(retry_after)})
    return JSONResponse(
        {"detail": detail, "code": "rate_limited"}, status_code=429, headers={"Retry-After": str(retry_after)}
    )
