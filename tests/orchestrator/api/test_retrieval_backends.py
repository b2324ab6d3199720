"""The service on other backends: embeddings from an OpenAI-compatible endpoint, and a vector store that is down."""

from __future__ import annotations

from orchestrator.retrieval import build_vector_store
from orchestrator.vectors.qdrant import QdrantVectorStore
from tests.fakes.openai_server import FakeOpenAI, text
from tests.orchestrator.api.conftest import SettingsFactory
from tests.support.service import free_port, running_service
from tests.support.turns import json_turn, new_conversation


async def test_memories_use_the_embeddings_endpoint_when_one_is_configured(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(embeddings_provider="openai", embeddings_model="embed-fake", embeddings_dimensions=48)
    async with running_service(settings) as service:
        saved = await service.client.post("/api/memories", json={"text": "I am learning Portuguese"})
        found = await service.client.get("/api/memories", params={"q": "learning Portuguese"})

    assert saved.status_code == 201
    assert [m["text"] for m in found.json()] == ["I am learning Portuguese"]
    assert fake_openai.embedding_requests
    assert {request["model"] for request in fake_openai.embedding_requests} == {"embed-fake"}
    assert (settings.data_dir / "vectors" / "assistant-memories-embed-fake-48-48").is_dir()


async def test_a_qdrant_server_that_is_down_costs_a_turn_its_memories_not_its_reply(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings(vector_db_url=f"http://127.0.0.1:{free_port()}", vector_db_timeout_seconds=3)
    async with running_service(settings) as service:
        fake_openai.script(text("Still here."))
        conversation = await new_conversation(service.client)
        reply = await json_turn(service.client, conversation, "Remember that I like long walks on the beach")
        listed = await service.client.get("/api/memories")

    assert (reply["status"], reply["content"]) == ("complete", "Still here.")
    assert (listed.status_code, listed.json()["code"]) == (503, "vector_store_unavailable")


def test_a_vector_db_url_selects_the_qdrant_server_store(make_settings: SettingsFactory) -> None:
    store = build_vector_store(make_settings(vector_db_url="https://qdrant.internal:6333", vector_db_api_key="k" * 40))

    assert isinstance(store, QdrantVectorStore)
