# Authlib ships no type information; its client objects are untyped at this one boundary.
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false
"""Sign-in providers through Authlib: Google and any OpenID Connect provider, and GitHub (OAuth 2).

Authlib does the protocol work: ``state`` kept in the browser's session, PKCE (S256), and for OpenID Connect the
``nonce`` and the ID token's signature, issuer, audience and expiry. This module turns a provider's answer into a
:class:`SignedInUser`, refusing answers that do not identify someone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask
from joserfc.errors import JoseError
from pydantic import BaseModel, TypeAdapter, ValidationError
from werkzeug.wrappers import Response

from frontend.errors import SignInFailed
from frontend.identity import SignedInUser
from frontend.settings import FrontendSettings

ProviderKind = Literal["oidc", "github"]
PROVIDER_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Provider:
    slug: str
    label: str
    kind: ProviderKind


def configured_providers(settings: FrontendSettings) -> list[Provider]:
    providers: list[Provider] = []
    if settings.google_client_id:
        providers.append(Provider("google", "Google", "oidc"))
    if settings.github_client_id:
        providers.append(Provider("github", "GitHub", "github"))
    if settings.oidc_client_id:
        providers.append(Provider("oidc", settings.oidc_label, "oidc"))
    return providers


class _GitHubUser(BaseModel):
    id: int
    login: str
    name: str | None = None


class _GitHubEmail(BaseModel):
    email: str
    primary: bool
    verified: bool


_github_emails = TypeAdapter(list[_GitHubEmail])


class SignInProviders:
    """The configured providers, each an Authlib client registered on the app."""

    def __init__(self, app: Flask, settings: FrontendSettings) -> None:
        self._oauth = OAuth(app)
        self._providers = {provider.slug: provider for provider in configured_providers(settings)}
        self._github_api_url = settings.github_api_url
        common: dict[str, Any] = {"default_timeout": PROVIDER_TIMEOUT_SECONDS, "code_challenge_method": "S256"}
        if settings.google_client_id and settings.google_client_secret:
            self._oauth.register(
                "google",
                client_id=settings.google_client_id,
                client_secret=settings.google_client_secret.get_secret_value(),
                server_metadata_url=settings.google_discovery_url,
                client_kwargs={**common, "scope": "openid email profile"},
            )
        if settings.oidc_client_id and settings.oidc_client_secret:
            self._oauth.register(
                "oidc",
                client_id=settings.oidc_client_id,
                client_secret=settings.oidc_client_secret.get_secret_value(),
                server_metadata_url=settings.oidc_discovery_url,
                client_kwargs={**common, "scope": "openid email profile"},
            )
        if settings.github_client_id and settings.github_client_secret:
            self._oauth.register(
                "github",
                client_id=settings.github_client_id,
                client_secret=settings.github_client_secret.get_secret_value(),
                authorize_url=settings.github_authorize_url,
                access_token_url=settings.github_token_url,
                api_base_url=settings.github_api_url.rstrip("/") + "/",
                client_kwargs={**common, "scope": "read:user user:email"},
            )

    @property
    def providers(self) -> list[Provider]:
        return list(self._providers.values())

    def get(self, slug: str) -> Provider | None:
        return self._providers.get(slug)

    def start(self, provider: Provider, redirect_uri: str) -> Response:
        """The redirect to the provider's consent page; Authlib keeps ``state``, the PKCE verifier and the nonce.

        Raises:
            SignInFailed: the provider's discovery document could not be fetched.
        """
        client = self._oauth.create_client(provider.slug)
        try:
            response: Response = client.authorize_redirect(redirect_uri)
        except (requests.RequestException, ValueError) as exc:
            raise SignInFailed(f"{provider.label} could not be reached ({type(exc).__name__})") from exc
        return response

    def finish(self, provider: Provider) -> SignedInUser:
        """Exchange the callback's code and identify the user.

        Raises:
            SignInFailed: the callback was forged or replayed (``state``), the provider refused the code, the ID token
                failed validation, or the account has no usable identity.
        """
        client = self._oauth.create_client(provider.slug)
        try:
            if provider.kind == "oidc":
                # Authlib's default claim checks test ``aud`` only through ``azp``; require both explicitly.
                metadata: dict[str, Any] = client.load_server_metadata()
                claims_options = {
                    "iss": {"essential": True, "value": metadata.get("issuer")},
                    "aud": {"essential": True, "value": client.client_id},
                }
                return _oidc_identity(provider, client.authorize_access_token(claims_options=claims_options))
            return self._github_identity(client, client.authorize_access_token())
        except SignInFailed:
            raise
        except (AuthlibBaseError, JoseError) as exc:
            raise SignInFailed(f"{provider.label} sign-in could not be verified ({_describe(exc)})") from exc
        except (requests.RequestException, ValidationError, ValueError) as exc:
            raise SignInFailed(f"{provider.label} sign-in failed ({type(exc).__name__})") from exc

    def _github_identity(self, client: Any, token: dict[str, Any]) -> SignedInUser:
        profile_response: requests.Response = client.get("user", token=token, timeout=PROVIDER_TIMEOUT_SECONDS)
        profile_response.raise_for_status()
        profile = _GitHubUser.model_validate_json(profile_response.content)
        emails_response: requests.Response = client.get("user/emails", token=token, timeout=PROVIDER_TIMEOUT_SECONDS)
        emails_response.raise_for_status()
        emails = _github_emails.validate_json(emails_response.content)
        primary = next((item for item in emails if item.primary), None)
        if primary is None or not primary.verified:
            raise SignInFailed("your GitHub account has no verified primary e-mail address")
        return SignedInUser.of("github", str(profile.id), name=profile.name or profile.login, email=primary.email)


def _oidc_identity(provider: Provider, token: dict[str, Any]) -> SignedInUser:
    # Authlib validates the ID token only when the token response has one; an OpenID provider must send it.
    if "id_token" not in token or "userinfo" not in token:
        raise SignInFailed(f"{provider.label} did not send an ID token")
    claims: dict[str, Any] = dict(token["userinfo"])
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 200:
        raise SignInFailed(f"{provider.label} did not say who you are")
    email = claims.get("email") if claims.get("email_verified") is True else None
    name = claims.get("name")
    return SignedInUser.of(
        provider.slug,
        subject,
        name=name if isinstance(name, str) else None,
        email=email if isinstance(email, str) else None,
    )


def _describe(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    description = getattr(exc, "description", None)
    if isinstance(error, str) and isinstance(description, str) and description:
        return f"{error}: {description}"
    if isinstance(error, str):
        return error
    return type(exc).__name__
