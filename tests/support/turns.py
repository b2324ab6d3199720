"""Helpers to drive chat turns through the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.support.sse import Event, read_events


async def new_conversation(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> str:
    response = await client.post("/api/conversations", headers=headers)
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, conversation_id: str, content: str, headers: dict[str, str] | None = None
) -> AsyncGenerator[AsyncIterator[Event]]:
    """Post a message asking for a stream; yield its events as they come (leaving the block disconnects)."""
    async with client.stream(
        "POST",
        f"/api/conversations/{conversation_id}/messages",
        json={"content": content},
        headers={"Accept": "text/event-stream", **(headers or {})},
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield read_events(response)


async def stream_turn(
    client: httpx.AsyncClient, conversation_id: str, content: str, headers: dict[str, str] | None = None
) -> list[Event]:
    """Post a message asking for a stream and read every event until the stream ends."""
    async with open_stream(client, conversation_id, content, headers) as events:
        return [event async for event in events]


async def json_turn(
    client: httpx.AsyncClient, conversation_id: str, content: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"content": content},
        headers={"Accept": "application/json", **(headers or {})},
    )
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


async def stored_messages(
    client: httpx.AsyncClient, conversation_id: str, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/conversations/{conversation_id}", headers=headers)
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def names(events: list[Event]) -> list[str]:
    """Event names with consecutive tokens folded into one, so orders read simply."""
    folded: list[str] = []
    for event in events:
        if event.event == "token" and folded and folded[-1] == "token":
            continue
        folded.append(event.event)
    return folded


async def follow_turn(
    client: httpx.AsyncClient,
    conversation_id: str,
    last_event_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> list[Event]:
    """Follow the conversation's reply (after ``last_event_id``) over ``GET .../events`` until it ends."""
    extra = {"Last-Event-ID": last_event_id} if last_event_id else {}
    url = f"/api/conversations/{conversation_id}/events"
    async with client.stream("GET", url, headers={**extra, **(headers or {})}) as response:
        assert response.status_code == 200, await response.aread()
        return [event async for event in read_events(response)]


def tokens(events: list[Event]) -> str:
    """The text the ``token`` events carried."""
    return "".join(event.data["text"] for event in events if event.event == "token")
