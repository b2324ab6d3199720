"""A fake OAuth 2 / OpenID Connect provider for tests: Google-like OIDC at the root, GitHub-like OAuth under /github.

``FakeOAuthProvider`` holds the state (registered clients, users, issued codes and tokens, an RSA signing key) and
the Starlette app; ``FakeOAuthServer`` serves it over real HTTP on a free port in a background thread.

It checks requests the way the real providers do (exact redirect URIs, one-time codes, PKCE S256, client
authentication) and lets a test tamper with the next ID token (``id_token_overrides``, ``sign_with_other_key``)
to prove that the client refuses it.

In tests::

    with FakeOAuthServer() as server:
        server.provider.register_client("web", "s3cret", "http://127.0.0.1:5000/auth/google/callback")
        server.provider.auto_login = "alice"  # /authorize redirects at once, without the sign-in page
        ...  # point the client at server.discovery_url, server.github_url, server.github_api_url

By hand::

    python -m tests.fakes.oauth_provider --port 8090 --client-id web --client-secret s3cret \\
        --redirect-uri http://127.0.0.1:5000/auth/google/callback

prints ``fake OAuth provider listening on http://127.0.0.1:8090`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import itertools
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.fakes.background_server import BackgroundServer

__all__ = ["FakeOAuthProvider", "FakeOAuthServer", "FakeUser", "GitHubEmail", "RegisteredClient"]

Flavour = Literal["oidc", "github"]

OIDC_SCOPES = ("openid", "email", "profile")
GITHUB_PREFIX = "/github"
_GITHUB_AUTHORIZE = f"{GITHUB_PREFIX}/login/oauth/authorize"
_GITHUB_TOKEN = f"{GITHUB_PREFIX}/login/oauth/access_token"
_GITHUB_DOCS = "https://docs.github.com/rest"
_GITHUB_EMAIL_SCOPES = frozenset({"user", "user:email"})

_PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class GitHubEmail:
    """One row of GitHub's ``GET /user/emails``."""

    email: str
    primary: bool = False
    verified: bool = True
    visibility: Literal["public", "private"] | None = None


@dataclass
class FakeUser:
    login: str
    sub: str
    email: str
    email_verified: bool
    name: str
    github_id: int
    github_emails: list[GitHubEmail]

    @property
    def github_public_email(self) -> str | None:
        """What GitHub's ``GET /user`` shows as ``email``: the address the user made public, if any."""
        return next((e.email for e in self.github_emails if e.visibility == "public"), None)


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass
class _AuthorizationRequest:
    flavour: Flavour
    client: RegisteredClient
    redirect_uri: str
    redirect_uri_sent: bool
    state: str
    scopes: tuple[str, ...]
    nonce: str | None
    code_challenge: str | None
    params: dict[str, str] = field(default_factory=dict[str, str])


@dataclass
class _Grant:
    """What an authorization code stands for."""

    request: _AuthorizationRequest
    login: str
    expires_at: float
    used: bool = False
    access_token: str | None = None


@dataclass
class _AccessToken:
    flavour: Flavour
    client_id: str
    login: str
    scopes: tuple[str, ...]
    expires_at: float | None


class _TokenError(Exception):
    def __init__(self, error: str, description: str, *, github_error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.github_error = github_error
        self.status = status


def _stable_github_id(login: str) -> int:
    return 10_000_000 + int.from_bytes(hashlib.sha256(login.encode()).digest()[:4]) % 90_000_000


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _s256(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode()).digest())


def _single_values(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    """The parameters as a dict, or None when one is repeated (RFC 6749 §3.1 forbids that)."""
    values: dict[str, str] = {}
    for key, value in pairs:
        if key in values:
            return None
        values[key] = value
    return values


def _with_query(uri: str, params: dict[str, str]) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(params)}"


def _bearer(request: Request, *, github: bool) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    accepted = ("bearer", "token") if github else ("bearer",)
    return (token.strip() or None) if scheme.lower() in accepted else None


class FakeOAuthProvider:
    """The provider's state and its ASGI app (``self.app``).

    Thread-safe for the pattern "the server thread answers, the test thread configures and inspects".

    Attributes:
        issuer: the OIDC issuer; ``FakeOAuthServer`` sets it to its base URL when left None.
        auto_login: when set to a username, ``GET /authorize`` (both flavours) signs that user in at once and
            redirects, without the sign-in page, so clients that only follow redirects can finish the flow.
        accept_login_hint: when True, a ``login_hint`` (or GitHub's ``login``) query parameter does the same.
        require_pkce: refuse authorization requests without a ``code_challenge``.
        id_token_overrides: merged into the claims of the next ID token issued (a None value removes the claim),
            then cleared. Mind that Authlib allows 120 s of clock skew when tampering with ``exp``.
        sign_with_other_key: sign the next ID token with a key absent from the JWKS (same ``kid``), then clear.
        authorize_requests / github_authorize_requests: query parameters of every ``GET`` authorization request.
        token_requests / github_token_requests: form bodies of every token request.
    """

    def __init__(
        self,
        *,
        issuer: str | None = None,
        access_token_lifetime: int = 3599,
        id_token_lifetime: int = 3600,
        code_lifetime: int = 600,
    ) -> None:
        self.issuer = issuer
        self.access_token_lifetime = access_token_lifetime
        self.id_token_lifetime = id_token_lifetime
        self.code_lifetime = code_lifetime
        self.clients: dict[str, RegisteredClient] = {}
        self.users: dict[str, FakeUser] = {}
        self.key_id = f"fake-{secrets.token_hex(4)}"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)
        self.auto_login: str | None = None
        self.accept_login_hint = False
        self.require_pkce = False
        self.id_token_overrides: dict[str, Any] = {}
        self.sign_with_other_key = False
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.github_authorize_requests: list[dict[str, str]] = []
        self.github_token_requests: list[dict[str, str]] = []
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery, methods=["GET"]),
                Route("/jwks", self._jwks, methods=["GET"]),
                Route("/authorize", self._oidc_authorize, methods=["GET", "POST"]),
                Route("/token", self._oidc_token, methods=["POST"]),
                Route("/userinfo", self._userinfo, methods=["GET", "POST"]),
                Route(_GITHUB_AUTHORIZE, self._github_authorize, methods=["GET", "POST"]),
                Route(_GITHUB_TOKEN, self._github_token, methods=["POST"]),
                Route(f"{GITHUB_PREFIX}/api/user", self._github_user, methods=["GET"]),
                Route(f"{GITHUB_PREFIX}/api/user/emails", self._github_emails, methods=["GET"]),
            ]
        )

    # --- configuration ------------------------------------------------------------------------------------------------

    def register_client(self, client_id: str, secret: str, redirect_uri: str | Sequence[str]) -> RegisteredClient:
        """Register (or replace) a client allowed to use both flavours with these exact redirect URIs."""
        uris = (redirect_uri,) if isinstance(redirect_uri, str) else tuple(redirect_uri)
        client = RegisteredClient(client_id, secret, uris)
        with self._lock:
            self.clients[client_id] = client
        return client

    def add_user(
        self,
        login: str,
        *,
        sub: str | None = None,
        email: str | None = None,
        email_verified: bool = True,
        name: str | None = None,
        github_id: int | None = None,
        github_emails: Sequence[GitHubEmail] | None = None,
    ) -> FakeUser:
        """Add (or replace) a user. Defaults: sub ``sub-<login>``, email ``<login>@example.com``, name = login.

        ``github_emails`` defaults to the email alone, primary, private (so GitHub's ``/user`` shows no email).
        """
        address = email if email is not None else f"{login}@example.com"
        emails = (
            list(github_emails)
            if github_emails is not None
            else [GitHubEmail(address, primary=True, verified=email_verified, visibility="private")]
        )
        user = FakeUser(
            login=login,
            sub=sub if sub is not None else f"sub-{login}",
            email=address,
            email_verified=email_verified,
            name=name if name is not None else login,
            github_id=github_id if github_id is not None else _stable_github_id(login),
            github_emails=emails,
        )
        with self._lock:
            self.users[login] = user
        return user

    def user(self, login: str) -> FakeUser:
        """The user with this login, created with the defaults when unknown (as when typed into the sign-in form)."""
        with self._lock:
            existing = self.users.get(login)
        return existing if existing is not None else self.add_user(login)

    def reset(self) -> None:
        """Restore every behaviour knob to its default and forget recorded requests; keeps clients, users, keys."""
        with self._lock:
            self.auto_login = None
            self.accept_login_hint = False
            self.require_pkce = False
            self.id_token_overrides = {}
            self.sign_with_other_key = False
            self.authorize_requests.clear()
            self.token_requests.clear()
            self.github_authorize_requests.clear()
            self.github_token_requests.clear()

    def jwks(self) -> dict[str, Any]:
        """The published key set: the signing key's public half only."""
        key = dict(RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True))
        key.update(kid=self.key_id, use="sig", alg="RS256")
        return {"keys": [key]}

    # --- OIDC ---------------------------------------------------------------------------------------------------------

    def _issuer(self, request: Request) -> str:
        return self.issuer or str(request.base_url).rstrip("/")

    async def _discovery(self, request: Request) -> Response:
        issuer = self._issuer(request)
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "userinfo_endpoint": f"{issuer}/userinfo",
                "jwks_uri": f"{issuer}/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": list(OIDC_SCOPES),
                "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "name", "nonce", "sub"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
            }
        )

    async def _jwks(self, _request: Request) -> Response:
        return JSONResponse(self.jwks())

    async def _oidc_authorize(self, request: Request) -> Response:
        return await self._authorize(request, "oidc")

    async def _oidc_token(self, request: Request) -> Response:
        form = await self._token_form(request, self.token_requests)
        try:
            body = self._exchange_code(request, form, "oidc")
        except _TokenError as e:
            headers = dict(_NO_STORE)
            if e.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="fake-oauth"'
            return JSONResponse({"error": e.error, "error_description": e.description}, e.status, headers)
        return JSONResponse(body, headers=_NO_STORE)

    async def _userinfo(self, request: Request) -> Response:
        issued = self._issued_token(_bearer(request, github=False), "oidc")
        if issued is None:
            return JSONResponse({"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return JSONResponse(self._user_claims(self.user(issued.login), issued.scopes))

    @staticmethod
    def _user_claims(user: FakeUser, scopes: tuple[str, ...]) -> dict[str, Any]:
        """The claims the granted scopes release, as Google does: email only with ``email``, name with ``profile``."""
        claims: dict[str, Any] = {"sub": user.sub}
        if "email" in scopes:
            claims.update(email=user.email, email_verified=user.email_verified)
        if "profile" in scopes:
            claims["name"] = user.name
        return claims

    def _id_token(self, issuer: str, grant: _Grant, access_token: str) -> str:
        now, request = int(time.time()), grant.request
        claims: dict[str, Any] = {
            "iss": issuer,
            "azp": request.client.client_id,
            "aud": request.client.client_id,
            **self._user_claims(self.user(grant.login), request.scopes),
            "at_hash": _b64url(hashlib.sha256(access_token.encode()).digest()[:16]),
            "iat": now,
            "exp": now + self.id_token_lifetime,
        }
        if request.nonce is not None:
            claims["nonce"] = request.nonce
        with self._lock:
            overrides, self.id_token_overrides = self.id_token_overrides, {}
            other_key, self.sign_with_other_key = self.sign_with_other_key, False
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = self._other_key if other_key else self._key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.key_id})

    # --- GitHub -------------------------------------------------------------------------------------------------------

    async def _github_authorize(self, request: Request) -> Response:
        return await self._authorize(request, "github")

    async def _github_token(self, request: Request) -> Response:
        form = await self._token_form(request, self.github_token_requests)
        try:
            body = self._exchange_code(request, form, "github")
        except _TokenError as e:
            body = {
                "error": e.github_error,
                "error_description": e.description,
                "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors",
            }
        # GitHub answers form-encoded unless asked for JSON, and reports errors with status 200.
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(body)
        return Response(urlencode(body), media_type="application/x-www-form-urlencoded; charset=utf-8")

    def _github_api_token(self, request: Request) -> _AccessToken | Response:
        token = _bearer(request, github=True)
        if token is None:
            return JSONResponse({"message": "Requires authentication", "documentation_url": _GITHUB_DOCS}, 401)
        issued = self._issued_token(token, "github")
        if issued is None:
            return JSONResponse({"message": "Bad credentials", "documentation_url": _GITHUB_DOCS}, 401)
        return issued

    async def _github_user(self, request: Request) -> Response:
        issued = self._github_api_token(request)
        if isinstance(issued, Response):
            return issued
        user = self.user(issued.login)
        return JSONResponse(
            {
                "login": user.login,
                "id": user.github_id,
                "node_id": f"U_fake{user.github_id}",
                "type": "User",
                "name": user.name,
                "email": user.github_public_email,
            },
            headers={"X-OAuth-Scopes": ", ".join(issued.scopes)},
        )

    async def _github_emails(self, request: Request) -> Response:
        issued = self._github_api_token(request)
        if isinstance(issued, Response):
            return issued
        # Like GitHub: without a scope that covers emails the resource does not exist for this token.
        if not _GITHUB_EMAIL_SCOPES.intersection(issued.scopes):
            return JSONResponse({"message": "Not Found", "documentation_url": _GITHUB_DOCS}, 404)
        user = self.user(issued.login)
        return JSONResponse(
            [
                {"email": e.email, "primary": e.primary, "verified": e.verified, "visibility": e.visibility}
                for e in user.github_emails
            ],
            headers={"X-OAuth-Scopes": ", ".join(issued.scopes)},
        )

    # --- the authorization endpoint (both flavours) -------------------------------------------------------------------

    async def _authorize(self, request: Request, flavour: Flavour) -> Response:
        if request.method == "GET":
            pairs = list(request.query_params.multi_items())
            with self._lock:
                (self.authorize_requests if flavour == "oidc" else self.github_authorize_requests).append(dict(pairs))
        else:
            pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        params = _single_values(pairs)
        if params is None:
            return _error_page("invalid_request", "A parameter was repeated.")
        checked = self._check_authorization(request, params, flavour)
        if isinstance(checked, Response):
            return checked
        if request.method == "GET":
            login = self.auto_login
            if login is None and self.accept_login_hint:
                login = params.get("login_hint") or (params.get("login") if flavour == "github" else None)
            if login is None:
                return _sign_in_page(checked, _authorize_path(flavour))
        elif params.get("action") == "deny":
            return self._redirect_error(request, checked, "access_denied", "The user refused access.")
        else:
            login = params.get("login", "").strip()
            if not login:
                return _sign_in_page(checked, _authorize_path(flavour), problem="Enter a username.")
        return self._issue_code(request, checked, login)

    def _check_authorization(
        self, request: Request, params: dict[str, str], flavour: Flavour
    ) -> _AuthorizationRequest | Response:
        """Validate an authorization request as the real provider would.

        Problems with the client or redirect URI get an error page (redirecting there would be unsafe); other
        problems redirect back to the client with ``error=...``.
        """
        with self._lock:
            client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return _error_page("invalid_client", "The OAuth client was not found.", status=401)
        sent_uri = params.get("redirect_uri")
        if sent_uri is None and flavour == "github":
            redirect_uri = client.redirect_uris[0]  # GitHub falls back to the app's registered callback
        elif sent_uri is None or sent_uri not in client.redirect_uris:
            return _error_page("redirect_uri_mismatch", "The redirect_uri is not registered for this client.")
        else:
            redirect_uri = sent_uri
        checked = _AuthorizationRequest(
            flavour=flavour,
            client=client,
            redirect_uri=redirect_uri,
            redirect_uri_sent=sent_uri is not None,
            state=params.get("state", ""),
            scopes=(),
            nonce=params.get("nonce") or None,
            code_challenge=params.get("code_challenge") or None,
            params=params,
        )
        problem = self._authorization_problem(params, flavour)
        if problem is not None:
            return self._redirect_error(request, checked, *problem)
        scope = params.get("scope", "")
        checked.scopes = tuple(s for s in re.split(r"[\s,]+", scope) if s)
        return checked

    def _authorization_problem(self, params: dict[str, str], flavour: Flavour) -> tuple[str, str] | None:
        response_type = params.get("response_type")
        if response_type != "code" and not (flavour == "github" and response_type is None):
            return "unsupported_response_type", "Only response_type=code is supported."
        if not params.get("state"):
            return "invalid_request", "Missing required parameter: state."
        if flavour == "oidc":
            scopes = params.get("scope", "").split()
            if not scopes:
                return "invalid_request", "Missing required parameter: scope."
            unknown = [s for s in scopes if s not in OIDC_SCOPES]
            if unknown:
                return "invalid_scope", f"Unknown scopes: {' '.join(unknown)}."
        challenge = params.get("code_challenge")
        if challenge is None:
            if self.require_pkce:
                return "invalid_request", "Missing required parameter: code_challenge."
        elif params.get("code_challenge_method") != "S256":
            return "invalid_request", "Only code_challenge_method=S256 is supported."
        elif not _S256_CHALLENGE.match(challenge):
            return "invalid_request", "Invalid code_challenge."
        return None

    def _redirect_error(
        self, request: Request, checked: _AuthorizationRequest, error: str, description: str
    ) -> Response:
        params = {"error": error, "error_description": description}
        if checked.state:
            params["state"] = checked.state
        if checked.flavour == "oidc":
            params["iss"] = self._issuer(request)
        return RedirectResponse(_with_query(checked.redirect_uri, params), 302)

    def _issue_code(self, request: Request, checked: _AuthorizationRequest, login: str) -> Response:
        self.user(login)
        code = f"code-{next(self._sequence)}-{secrets.token_urlsafe(16)}"
        grant = _Grant(checked, login, expires_at=time.time() + self.code_lifetime)
        with self._lock:
            self._grants[code] = grant
        params = {"code": code, "state": checked.state}
        if checked.flavour == "oidc":
            params["iss"] = self._issuer(request)
        return RedirectResponse(_with_query(checked.redirect_uri, params), 302)

    # --- the token endpoint (both flavours) ---------------------------------------------------------------------------

    async def _token_form(self, request: Request, record: list[dict[str, str]]) -> list[tuple[str, str]]:
        pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        with self._lock:
            record.append(dict(pairs))
        return pairs

    def _exchange_code(self, request: Request, pairs: list[tuple[str, str]], flavour: Flavour) -> dict[str, Any]:
        github = flavour == "github"
        if not github and not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise _TokenError("invalid_request", "Expected a form-encoded body.", github_error="invalid_request")
        form = _single_values(pairs)
        if form is None:
            raise _TokenError("invalid_request", "A parameter was repeated.", github_error="invalid_request")
        client = self._authenticate_client(request, form, github=github)
        if form.get("grant_type", "authorization_code" if github else None) != "authorization_code":
            raise _TokenError(
                "unsupported_grant_type", "Only authorization_code.", github_error="unsupported_grant_type"
            )
        bad_code = _TokenError("invalid_grant", "Bad code.", github_error="bad_verification_code")
        with self._lock:
            grant = self._grants.get(form.get("code", ""))
            if grant is None or grant.request.flavour != flavour or grant.request.client.client_id != client.client_id:
                raise bad_code
            if grant.used:
                # A replayed code revokes what it bought (RFC 6749 §4.1.2).
                if grant.access_token is not None:
                    self._tokens.pop(grant.access_token, None)
                raise _TokenError("invalid_grant", "Code already used.", github_error="bad_verification_code")
        if grant.expires_at < time.time():
            raise _TokenError("invalid_grant", "Code expired.", github_error="bad_verification_code")
        authorized = grant.request
        sent_uri = form.get("redirect_uri")
        if (sent_uri is not None or not github or authorized.redirect_uri_sent) and sent_uri != authorized.redirect_uri:
            raise _TokenError("invalid_grant", "redirect_uri mismatch.", github_error="redirect_uri_mismatch")
        verifier = form.get("code_verifier")
        if authorized.code_challenge is None:
            if verifier is not None:
                raise _TokenError("invalid_grant", "No code_challenge was sent.", github_error="bad_verification_code")
        elif verifier is None or not _PKCE_VERIFIER.match(verifier) or _s256(verifier) != authorized.code_challenge:
            raise _TokenError("invalid_grant", "Invalid code_verifier.", github_error="bad_verification_code")

        access_token = f"{'gho' if github else 'ya29'}_{secrets.token_urlsafe(27)}"
        with self._lock:
            if grant.used:  # two concurrent exchanges of one code: only the first wins
                raise _TokenError("invalid_grant", "Code already used.", github_error="bad_verification_code")
            grant.used = True
            grant.access_token = access_token
            self._tokens[access_token] = _AccessToken(
                flavour=flavour,
                client_id=client.client_id,
                login=grant.login,
                scopes=authorized.scopes,
                expires_at=None if github else time.time() + self.access_token_lifetime,
            )
        if github:
            return {"access_token": access_token, "token_type": "bearer", "scope": ",".join(authorized.scopes)}
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "scope": " ".join(authorized.scopes),
        }
        if "openid" in authorized.scopes:
            body["id_token"] = self._id_token(self._issuer(request), grant, access_token)
        return body

    def _authenticate_client(self, request: Request, form: dict[str, str], *, github: bool) -> RegisteredClient:
        invalid = _TokenError(
            "invalid_client", "Client authentication failed.", github_error="incorrect_client_credentials", status=401
        )
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        basic = scheme.lower() == "basic"
        if basic and not (github and "client_secret" in form):
            if "client_secret" in form:  # RFC 6749 §2.3: one authentication method per request
                raise _TokenError(
                    "invalid_request", "Two client authentication methods.", github_error="incorrect_client_credentials"
                )
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except ValueError:
                raise invalid from None
            raw_id, _, raw_secret = decoded.partition(":")
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            if form.get("client_id", client_id) != client_id:
                raise invalid
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        with self._lock:
            client = self.clients.get(client_id)
        if client is None or not secret or not hmac.compare_digest(secret.encode(), client.client_secret.encode()):
            raise invalid
        return client

    def _issued_token(self, token: str | None, flavour: Flavour) -> _AccessToken | None:
        if token is None:
            return None
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None or issued.flavour != flavour:
            return None
        if issued.expires_at is not None and issued.expires_at < time.time():
            return None
        return issued


def _authorize_path(flavour: Flavour) -> str:
    return "/authorize" if flavour == "oidc" else _GITHUB_AUTHORIZE


def _error_page(error: str, description: str, *, status: int = 400) -> Response:
    return HTMLResponse(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Error {status}</title></head>"
        f"<body><h1>Error {status}: {html.escape(error)}</h1><p>{html.escape(description)}</p></body></html>",
        status,
    )


_PASSED_THROUGH = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)


def _sign_in_page(checked: _AuthorizationRequest, action: str, *, problem: str | None = None) -> Response:
    hidden = "\n".join(
        f'<input type="hidden" name="{name}" value="{html.escape(checked.params[name])}">'
        for name in _PASSED_THROUGH
        if name in checked.params
    )
    provider = "Fake OpenID Provider" if checked.flavour == "oidc" else "Fake GitHub"
    notice = f'<p role="alert">{html.escape(problem)}</p>' if problem else ""
    return HTMLResponse(
        f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in - {provider}</title></head>
<body>
<main>
<h1>Sign in to {html.escape(checked.client.client_id)}</h1>
<p>{provider}</p>
{notice}
<form method="post" action="{action}">
{hidden}
<label for="login">Username</label>
<input id="login" name="login" type="text" autocomplete="username" autofocus required>
<button type="submit" name="action" value="allow">Sign in</button>
<button type="submit" name="action" value="deny" formnovalidate>Cancel</button>
</form>
</main>
</body>
</html>
""",
        400 if problem else 200,
    )


class FakeOAuthServer(BackgroundServer):
    """Serves a ``FakeOAuthProvider`` with uvicorn on a background thread; a context manager.

    Attributes (once entered):
        url: ``http://127.0.0.1:<port>``, also the OIDC issuer unless the provider was given one.
    """

    thread_name = "fake-oauth"

    def __init__(self, provider: FakeOAuthProvider | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.provider = provider if provider is not None else FakeOAuthProvider()

    def app(self) -> ASGIApp:
        if self.provider.issuer is None:
            self.provider.issuer = self.url
        return self.provider.app

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    @property
    def github_url(self) -> str:
        """Where GitHub's ``https://github.com`` would be: ``<url>/github`` (``/login/oauth/...`` below it)."""
        return f"{self.url}{GITHUB_PREFIX}"

    @property
    def github_api_url(self) -> str:
        """Where ``https://api.github.com/`` would be, with the trailing slash Authlib's ``api_base_url`` wants."""
        return f"{self.url}{GITHUB_PREFIX}/api/"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.oauth_provider", description="Run the fake OAuth 2 / OpenID Connect provider."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--client-id", help="register this client (needs --client-secret and --redirect-uri)")
    parser.add_argument("--client-secret")
    parser.add_argument("--redirect-uri", action="append", default=[], help="repeat for several")
    parser.add_argument("--auto-login", help="sign this username in without showing the sign-in page")
    args = parser.parse_args(argv)
    if args.client_id and not (args.client_secret and args.redirect_uri):
        parser.error("--client-id needs --client-secret and at least one --redirect-uri")

    provider = FakeOAuthProvider()
    if args.client_id:
        provider.register_client(args.client_id, args.client_secret, args.redirect_uri)
    provider.auto_login = args.auto_login
    server = FakeOAuthServer(provider, host=args.host, port=args.port)

    def announce() -> None:
        print(f"fake OAuth provider listening on {server.url}", flush=True)
        print(f"  OIDC discovery: {server.discovery_url}", flush=True)
        print(f"  GitHub: {server.github_url} (API {server.github_api_url})", flush=True)

    server.run(announce)


if __name__ == "__main__":
    main()
