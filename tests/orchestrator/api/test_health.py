"""Health endpoints and the service with no model configured."""

from __future__ import annotations

import anyio

from tests.orchestrator.api.conftest import SettingsFactory
from tests.support.service import Service, running_service
from tests.support.turns import new_conversation, stored_messages


async def test_health_endpoints_report_database_model_and_servers(service: Service) -> None:
    client = service.client

    live, ready, startup = [await client.get(f"/health/{name}") for name in ("live", "ready", "startup")]
    detailed = (await client.get("/health/detailed")).json()

    assert (live.status_code, ready.status_code, startup.status_code) == (200, 200, 200)
    assert detailed["database"]["status"] == "up"
    assert detailed["model"] == {"status": "configured", "model": "fake-gpt", "endpoint": detailed["model"]["endpoint"]}
    assert [(s["id"], s["status"]) for s in detailed["mcp_servers"]] == [("test", "healthy")]
    assert detailed["memory"] == {"status": "on", "store": "embedded", "embeddings": "local"}
    assert detailed["tool_retrieval"]["status"] == "on"
    assert detailed["status"] == "ok"


async def test_without_a_model_the_service_starts_and_says_how_to_configure_one(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(openai_api_key=None, openai_base_url=None)
    async with running_service(settings) as service:
        conversation = await new_conversation(service.client)

        detailed = (await service.client.get("/health/detailed")).json()
        reply = await service.client.post(f"/api/conversations/{conversation}/messages", json={"content": "hello"})
        messages = await stored_messages(service.client, conversation)

    assert detailed["model"]["status"] == "not configured"
    assert detailed["status"] == "degraded"
    assert reply.status_code == 503
    assert reply.json()["code"] == "model_not_configured"
    assert "OPENAI_API_KEY" in reply.json()["detail"]
    assert messages == []


async def test_a_broken_server_is_reported_without_making_the_service_unready(make_settings: SettingsFactory) -> None:
    servers = {"ghost": {"command": "/nonexistent/mcp-server"}, "down": {"url": "http://127.0.0.1:9/mcp"}}
    async with running_service(make_settings(servers=servers)) as service:
        ready = await service.client.get("/health/ready")
        # A broken server is retried, and stays unhealthy while it is.
        with anyio.fail_after(20):
            while True:
                detailed = (await service.client.get("/health/detailed")).json()
                if all(s["failed_attempts"] >= 2 for s in detailed["mcp_servers"]):
                    break
                await anyio.sleep(0.05)

    assert ready.status_code == 200
    assert {s["id"]: s["status"] for s in detailed["mcp_servers"]} == {"ghost": "unhealthy", "down": "unhealthy"}
    assert all(s["last_error"] for s in detailed["mcp_servers"])
    assert detailed["status"] == "degraded"
