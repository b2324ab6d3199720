import time

import jwt
import pytest

from orchestrator.auth import LOCAL_USER, Authenticator
from orchestrator.errors import AuthenticationFailed

SECRET = "s" * 40


def token(claims: dict[str, object], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def test_without_a_secret_every_request_is_the_local_admin() -> None:
    caller = Authenticator(None, frozenset()).authenticate(None)

    assert caller.user == LOCAL_USER
    assert caller.is_admin


def test_without_a_secret_bearer_tokens_are_refused_rather_than_ignored() -> None:
    with pytest.raises(AuthenticationFailed):
        Authenticator(None, frozenset()).authenticate("Bearer abc")


def test_a_valid_token_names_the_user_and_their_admin_role() -> None:
    auth = Authenticator(SECRET, frozenset({"alice"}))
    header = "Bearer " + token({"sub": "alice", "exp": int(time.time()) + 60, "name": "Alice", "email": "a@x.org"})

    caller = auth.authenticate(header)

    assert (caller.user.id, caller.user.name, caller.user.email, caller.is_admin) == ("alice", "Alice", "a@x.org", True)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic abc",
        "Bearer",
        "Bearer not-a-jwt",
        "Bearer " + token({"sub": "bob", "exp": int(time.time()) - 3600}),
        "Bearer " + token({"sub": "bob"}),
        "Bearer " + token({"exp": int(time.time()) + 60}),
        "Bearer " + token({"sub": "bob", "exp": int(time.time()) + 60}, secret="another-secret-of-enough-length!!"),
        "Bearer " + token({"sub": "", "exp": int(time.time()) + 60}),
    ],
)
def test_missing_expired_forged_or_incomplete_tokens_are_refused(header: str | None) -> None:
    with pytest.raises(AuthenticationFailed):
        Authenticator(SECRET, frozenset()).authenticate(header)


def test_a_token_with_the_none_algorithm_is_refused() -> None:
    unsigned = jwt.encode({"sub": "mallory", "exp": int(time.time()) + 60}, key="", algorithm="none")

    with pytest.raises(AuthenticationFailed):
        Authenticator(SECRET, frozenset()).authenticate(f"Bearer {unsigned}")
