"""Rate limits on /api/: per user and per client IP, Retry-After, trusted proxies, Redis shared and Redis down."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx

from orchestrator.ratelimit import TrustedProxies
from tests.orchestrator.api.conftest import JWT_SECRET, SettingsFactory, bearer
from tests.support.redis import SHARED_REDIS_URL, keys_matching, private_redis
from tests.support.service import running_service

ALICE = bearer("alice")
BOB = bearer("bob")


async def statuses(client: httpx.AsyncClient, count: int, headers: dict[str, str] | None = None) -> list[int]:
    return [(await client.get("/api/conversations", headers=headers)).status_code for _ in range(count)]


def test_the_client_ip_is_the_peer_unless_the_peer_is_a_trusted_proxy() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "127.0.0.1"])

    assert proxies.client_ip("203.0.113.9", "198.51.100.1") == "203.0.113.9"
    assert proxies.client_ip("10.1.2.3", "198.51.100.1") == "198.51.100.1"
    assert proxies.client_ip("127.0.0.1", "198.51.100.1, 10.1.2.3") == "198.51.100.1"
    # What the client wrote itself sits left of what our proxies appended, and is never reached.
    assert proxies.client_ip("10.1.2.3", "6.6.6.6, 198.51.100.1") == "198.51.100.1"
    assert proxies.client_ip("10.1.2.3", None) == "10.1.2.3"


async def test_a_user_over_the_limit_gets_429_with_retry_after_and_others_are_not_affected(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(jwt_secret_key=JWT_SECRET, rate_limit_per_minute=3)
    async with running_service(settings) as service:
        assert await statuses(service.client, 3, ALICE) == [200, 200, 200]

        refused = await service.client.get("/api/conversations", headers=ALICE)

        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert await statuses(service.client, 1, BOB) == [200]
        # Probes are never limited.
        assert (await service.client.get("/health/live")).status_code == 200


async def test_the_hourly_limit_applies_too(make_settings: SettingsFactory) -> None:
    settings = make_settings(jwt_secret_key=JWT_SECRET, rate_limit_per_minute=100, rate_limit_per_hour=2)
    async with running_service(settings) as service:
        refused = await service.client.get("/api/conversations", headers=ALICE)
        refused = await service.client.get("/api/conversations", headers=ALICE)
        refused = await service.client.get("/api/conversations", headers=ALICE)

        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 60


async def test_requests_without_a_token_are_limited_per_client_ip_from_trusted_proxies_only(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(jwt_secret_key=JWT_SECRET, rate_limit_per_minute=2, trusted_proxies=["127.0.0.1"])
    async with running_service(settings) as service:
        client = service.client
        one = {"X-Forwarded-For": "198.51.100.1"}
        assert await statuses(client, 3, one) == [401, 401, 429]
        # Another client behind the proxy has a limit of its own.
        assert await statuses(client, 1, {"X-Forwarded-For": "198.51.100.2"}) == [401]
        # A spoofed entry to the left of what the proxy appended changes nothing.
        spoofed = {"X-Forwarded-For": "203.0.113.77, 198.51.100.1"}
        assert await statuses(client, 1, spoofed) == [429]


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(make_settings: SettingsFactory) -> None:
    settings = make_settings(jwt_secret_key=JWT_SECRET, rate_limit_per_minute=2)
    async with running_service(settings) as service:
        results = [
            (await service.client.get("/api/conversations", headers={"X-Forwarded-For": f"198.51.100.{n}"})).status_code
            for n in range(3)
        ]

        assert results == [401, 401, 429]


async def test_replicas_sharing_redis_share_the_limits(make_settings: SettingsFactory, redis_prefix: str) -> None:
    settings = make_settings(
        jwt_secret_key=JWT_SECRET,
        rate_limit_per_minute=4,
        redis_url=SHARED_REDIS_URL,
        redis_key_prefix=redis_prefix,
    )
    async with running_service(settings) as first, running_service(settings) as second:
        assert await statuses(first.client, 2, ALICE) == [200, 200]
        assert await statuses(second.client, 2, ALICE) == [200, 200]

        assert await statuses(first.client, 1, ALICE) == [429]
        assert await statuses(second.client, 1, ALICE) == [429]


async def test_with_redis_down_requests_still_succeed_limited_in_memory_and_redis_is_used_again_when_back(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    async with private_redis(tmp_path) as redis:
        settings = make_settings(
            jwt_secret_key=JWT_SECRET, rate_limit_per_minute=5, redis_url=redis.url, redis_timeout_seconds=0.5
        )
        async with running_service(settings) as service:
            assert await statuses(service.client, 1, ALICE) == [200]

            redis.stop()
            # No storm of errors: the limits are counted in memory meanwhile, and still apply.
            assert await statuses(service.client, 6, BOB) == [200, 200, 200, 200, 200, 429]
            health = (await service.client.get("/health/detailed")).json()
            assert health["redis"]["status"] == "down"
            assert health["status"] == "degraded"

            await redis.start()
            health = (await service.client.get("/health/detailed")).json()
            assert health["redis"]["status"] == "up"
            # The limiter finds Redis again by itself (it checks after 2, 4, 8 ... seconds) and counts there.
            with anyio.fail_after(30):
                while True:
                    await service.client.get("/api/conversations", headers=ALICE)
                    if await keys_matching(redis.url, "*ratelimit*"):
                        break
                    await anyio.sleep(0.2)


async def test_api_key_requests_count_against_the_keys_user_on_v1_too(make_settings: SettingsFactory) -> None:
    settings = make_settings({}, jwt_secret_key=JWT_SECRET, rate_limit_per_minute=4)
    async with running_service(settings) as service:
        created = await service.client.post("/api/api-keys", json={"name": "ci"}, headers=ALICE)
        key = {"Authorization": f"Bearer {created.json()['key']}"}
        models = [(await service.client.get("/v1/models", headers=key)).status_code for _ in range(2)]

        mixed = await service.client.get("/api/conversations", headers=ALICE)
        refused = await service.client.get("/v1/models", headers=key)

        assert (created.status_code, models, mixed.status_code) == (201, [200, 200], 200)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert await statuses(service.client, 1, BOB) == [200]
