"""Signing users in to a real OAuth-protected MCP server (the SDK's authorization server) and using their grants."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from redis.asyncio import Redis

from orchestrator.errors import AuthorizationRequestNotFound, ServerAuthorizationFailed
from orchestrator.mcp.connection import ServerConnection
from orchestrator.mcp.oauth.flow import ClientIdentity, SignInRefused, sign_in
from orchestrator.mcp.oauth.grants import GrantVault
from orchestrator.mcp.oauth.inbox import Callback, LocalInbox, Outcome
from orchestrator.mcp.oauth.locks import LocalLocks, RedisLocks
from orchestrator.mcp.oauth.signins import SignIns
from orchestrator.mcp.oauth.tokens import GrantAuth, TokenRefresher
from orchestrator.mcp.types import OAuthClientConfig, ServerConfig
from tests.fakes.mcp_http import ProtectedTestServer, running_protected_server
from tests.support.redis import SHARED_REDIS_URL
from tests.support.sign_in import consent, stats

IDENTITY = ClientIdentity(redirect_uri="http://127.0.0.1:9/api/oauth/callback")
"""Nothing listens there: the tests read the code from the redirect, as our callback route would."""


def config_for(server: ProtectedTestServer) -> ServerConfig:
    return ServerConfig(id="protected", transport="streamable-http", url=server.url, oauth=OAuthClientConfig())


def callback_from(location: str) -> Callback:
    params = {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}
    return Callback(
        state=params["state"],
        code=params.get("code"),
        iss=params.get("iss"),
        error=params.get("error"),
        error_description=params.get("error_description"),
    )


def sign_ins_for(vault: GrantVault) -> SignIns:
    """Sign-ins on one replica (its task group lives in the test's own task, hence no fixture)."""
    return SignIns(vault, TokenRefresher(vault, LocalLocks()), LocalInbox(), IDENTITY, timeout_seconds=30)


async def signed_in(sign_ins: SignIns, user: str, config: ServerConfig, *, account: str = "alice") -> Outcome:
    pending = await sign_ins.begin(user, config)
    _, outcome = await sign_ins.complete(user, callback_from(await consent(pending.url, account=account)))
    return outcome


async def call_whoami(config: ServerConfig, auth: GrantAuth) -> str:
    connection = ServerConnection(config, auth=auth)
    answers: list[str] = []
    async with anyio.create_task_group() as group:
        group.start_soon(connection.run)
        with anyio.fail_after(20):
            await connection.wait_settled()
        assert connection.status == "healthy", connection.last_error
        try:
            result = await connection.call_tool("whoami", {})
        finally:
            connection.stop()
        answers.extend(block.text for block in result.content if block.type == "text")
    return " ".join(answers)


async def test_a_signed_in_user_calls_tools_with_the_token_the_authorization_server_gave(
    vault: GrantVault, protected: ProtectedTestServer
) -> None:
    async with sign_ins_for(vault) as sign_ins:
        config = config_for(protected)

        outcome = await signed_in(sign_ins, "alice", config, account="alice@example")
        answer = await call_whoami(config, GrantAuth(TokenRefresher(vault, LocalLocks()), "alice", "protected"))

        grant = await vault.load("alice", "protected")
        assert outcome.status == "connected"
        assert answer == "signed in as alice@example"
        assert grant is not None
        assert grant.issuer.rstrip("/") == protected.base
        assert grant.resource == protected.url
        seen = (await stats(protected.base))["bearer_tokens"]
        assert seen
        assert set(seen) == {grant.access_token}


async def test_the_assistant_registers_once_per_server_and_each_user_gets_their_own_tokens(
    vault: GrantVault, protected: ProtectedTestServer
) -> None:
    async with sign_ins_for(vault) as sign_ins:
        config = config_for(protected)

        await signed_in(sign_ins, "alice", config, account="alice")
        await signed_in(sign_ins, "bob", config, account="bob")

        alice, bob = await vault.load("alice", "protected"), await vault.load("bob", "protected")
        assert (await stats(protected.base))["registrations"] == 1
        assert alice is not None
        assert bob is not None
        assert alice.access_token != bob.access_token
        assert alice.client_id == bob.client_id


async def test_a_refused_consent_fails_the_sign_in_with_the_servers_answer(
    vault: GrantVault, protected: ProtectedTestServer
) -> None:
    async with sign_ins_for(vault) as sign_ins:
        pending = await sign_ins.begin("alice", config_for(protected))

        _, outcome = await sign_ins.complete("alice", callback_from(await consent(pending.url, allow=False)))

        assert outcome.status == "failed"
        with pytest.raises(ServerAuthorizationFailed, match="access_denied"):
            await pending.wait()
        assert await vault.load("alice", "protected") is None


async def test_an_answer_for_another_users_sign_in_or_a_replayed_one_is_refused(
    vault: GrantVault, protected: ProtectedTestServer
) -> None:
    async with sign_ins_for(vault) as sign_ins:
        pending = await sign_ins.begin("alice", config_for(protected))
        answer = callback_from(await consent(pending.url))

        with pytest.raises(AuthorizationRequestNotFound):
            await sign_ins.complete("bob", answer)
        _, outcome = await sign_ins.complete("alice", answer)
        with pytest.raises(AuthorizationRequestNotFound):
            await sign_ins.complete("alice", answer)

        assert outcome.status == "connected"


async def test_asking_again_while_a_sign_in_waits_gives_the_same_sign_in(
    vault: GrantVault, protected: ProtectedTestServer
) -> None:
    async with sign_ins_for(vault) as sign_ins:
        first = await sign_ins.begin("alice", config_for(protected))
        second = await sign_ins.begin("alice", config_for(protected))

        assert second is first


async def test_a_token_about_to_expire_is_refreshed_before_it_is_used(
    vault: GrantVault, protected: ProtectedTestServer
) -> None:
    async with sign_ins_for(vault) as sign_ins:
        await signed_in(sign_ins, "alice", config_for(protected))
        before = await vault.load("alice", "protected")
        # Every token counts as about to expire: its hour is less than this margin.
        refresher = TokenRefresher(vault, LocalLocks(), margin_seconds=7200)

        token = await refresher.access_token("alice", "protected")

        after = await vault.load("alice", "protected")
        assert before is not None
        assert after is not None
        assert token == after.access_token != before.access_token
        assert after.refresh_token != before.refresh_token  # rotated
        assert (await stats(protected.base))["refreshes"] == 1


async def test_replicas_sharing_redis_refresh_a_grant_once(vault: GrantVault, redis_prefix: str) -> None:
    async with running_protected_server(refresh_delay=0.5) as server:
        async with SignIns(
            vault, TokenRefresher(vault, LocalLocks()), LocalInbox(), IDENTITY, timeout_seconds=30
        ) as sign_ins:
            await signed_in(sign_ins, "alice", config_for(server))
        clients = [Redis.from_url(SHARED_REDIS_URL) for _ in range(2)]  # pyright: ignore[reportUnknownMemberType]
        replicas = [TokenRefresher(vault, RedisLocks(c, redis_prefix), margin_seconds=7200) for c in clients]
        tokens: list[str] = []

        async def refresh(replica: TokenRefresher) -> None:
            tokens.append(await replica.access_token("alice", "protected"))

        try:
            async with anyio.create_task_group() as group:
                for replica in replicas:
                    group.start_soon(refresh, replica)
        finally:
            for client in clients:
                await client.aclose()
        seen = await stats(server.base)

    assert seen["refreshes"] == 1
    assert seen["refresh_refused"] == 0
    assert len(set(tokens)) == 1


async def test_a_grant_the_authorization_server_no_longer_refreshes_is_forgotten(
    vault: GrantVault, protected: ProtectedTestServer
) -> None:
    async with sign_ins_for(vault) as sign_ins:
        await signed_in(sign_ins, "alice", config_for(protected))
        grant = await vault.load("alice", "protected")
        assert grant is not None
        assert await sign_ins.disconnect("alice", "protected")  # the server forgets the refresh token
        await vault.save("alice", "protected", grant)  # as if the grant had stayed behind here
        refresher = TokenRefresher(vault, LocalLocks(), margin_seconds=7200)

        auth = GrantAuth(refresher, "alice", "protected")
        connection = ServerConnection(config_for(protected), auth=auth)
        async with anyio.create_task_group() as group:
            group.start_soon(connection.run)
            with anyio.fail_after(20):
                await connection.wait_settled()
            connection.stop()

        assert connection.status in ("auth_required", "stopped")
        assert auth.challenge is not None
        assert await vault.load("alice", "protected") is None


async def test_disconnecting_revokes_the_tokens_and_deletes_them(
    vault: GrantVault, protected: ProtectedTestServer
) -> None:
    async with sign_ins_for(vault) as sign_ins:
        await signed_in(sign_ins, "alice", config_for(protected))
        grant = await vault.load("alice", "protected")

        had_grant = await sign_ins.disconnect("alice", "protected")

        assert grant is not None
        assert had_grant
        assert await vault.load("alice", "protected") is None
        assert {grant.access_token, grant.refresh_token} <= set((await stats(protected.base))["revoked"])
        assert not await sign_ins.disconnect("alice", "protected")


async def test_a_sign_in_page_that_is_not_https_is_refused_before_anyone_sees_it(vault: GrantVault) -> None:
    shown: list[str] = []

    async def present(url: str, state: str) -> None:
        shown.append(url)

    async def receive(state: str) -> Callback:
        raise AssertionError("nobody should be asked")

    with pytest.raises(SignInRefused, match="not https"):
        await sign_in(
            ServerConfig(id="remote", transport="streamable-http", url="https://mcp.example.com/mcp"),
            IDENTITY,
            vault,
            present=present,
            receive=receive,
            transport=httpx2.MockTransport(_authorization_server_on_plain_http),
        )
    assert shown == []


def _authorization_server_on_plain_http(request: httpx2.Request) -> httpx2.Response:
    """A protected server whose (remote) authorization server sends people to a plain-http sign-in page."""
    path = request.url.path
    if path == "/mcp":
        return httpx2.Response(401, headers={"WWW-Authenticate": 'Bearer realm="mcp"'})
    if path.startswith("/.well-known/oauth-protected-resource"):
        return httpx2.Response(
            200, json={"resource": "https://mcp.example.com/mcp", "authorization_servers": ["https://mcp.example.com"]}
        )
    if path.startswith("/.well-known/oauth-authorization-server"):
        return httpx2.Response(
            200,
            json={
                "issuer": "https://mcp.example.com",
                "authorization_endpoint": "http://login.example.com/authorize",
                "token_endpoint": "https://mcp.example.com/token",
                "registration_endpoint": "https://mcp.example.com/register",
                "code_challenge_methods_supported": ["S256"],
            },
        )
    if path == "/register":
        return httpx2.Response(201, json={"client_id": "c1", "redirect_uris": [IDENTITY.redirect_uri]})
    return httpx2.Response(404)
