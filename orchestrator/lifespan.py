"""The long-lived parts of the service, opened at start-up and closed at shutdown by one owner."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI

from orchestrator.auth import Authenticator, KnownUsers
from orchestrator.discovery.watcher import kubernetes_discovery
from orchestrator.llm.openai_model import OpenAIChatModel
from orchestrator.llm.types import ChatModel
from orchestrator.llm.unconfigured import UnconfiguredChatModel
from orchestrator.loop.active import ActiveTurns
from orchestrator.loop.runner import LoopLimits, TurnRunner
from orchestrator.mcp.pinning import ToolApprovals
from orchestrator.mcp.registry import McpRegistry
from orchestrator.mcp.sources import configured_servers
from orchestrator.memory.db import open_database, redact_url
from orchestrator.memory.migrate import upgrade_database
from orchestrator.memory.store import SqlStore
from orchestrator.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class AppState:
    """Everything a request may use; built once per process by ``lifespan``."""

    settings: Settings
    store: SqlStore
    registry: McpRegistry
    model: ChatModel
    runner: TurnRunner
    auth: Authenticator
    turns: ActiveTurns = field(default_factory=ActiveTurns)
    known_users: KnownUsers = field(default_factory=KnownUsers)
    started_at: float = field(default_factory=time.monotonic)


def build_model(settings: Settings) -> ChatModel:
    if not settings.model_configured:
        return UnconfiguredChatModel(settings.openai_model)
    return OpenAIChatModel(
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed",
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        temperature=settings.openai_temperature,
        max_tokens=settings.openai_max_tokens,
        timeout_seconds=settings.openai_timeout_seconds,
        max_retries=settings.openai_max_retries,
    )


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncGenerator[AppState]:
    """Open the database (migrating it), the MCP connections and the model client; close them in reverse."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database_url = settings.resolved_database_url
    logger.info("migrating database %s", redact_url(database_url))
    await upgrade_database(database_url)
    async with AsyncExitStack() as stack:
        database = open_database(
            database_url, pool_size=settings.database_pool_size, max_overflow=settings.database_max_overflow
        )
        stack.push_async_callback(database.dispose)
        store = SqlStore(database)
        servers = configured_servers(settings, await store.list_registrations())
        approvals = ToolApprovals(store) if settings.mcp_tool_approval == "pin" else None
        registry = await stack.enter_async_context(
            McpRegistry(servers, tool_result_max_chars=settings.tool_result_max_chars, approvals=approvals)
        )
        if settings.mcp_kubernetes_discovery:
            await stack.enter_async_context(kubernetes_discovery(settings, registry))
        model = build_model(settings)
        stack.push_async_callback(model.aclose)
        runner = TurnRunner(
            model,
            registry,
            store,
            LoopLimits(
                max_tool_iterations=settings.max_tool_iterations,
                turn_token_budget=settings.turn_token_budget,
                history_max_chars=settings.history_max_chars,
                max_tokens=settings.openai_max_tokens,
                system_prompt=settings.system_prompt or None,
                interaction_timeout_seconds=settings.interaction_timeout_seconds,
            ),
        )
        auth = Authenticator(
            settings.jwt_secret_key.get_secret_value() if settings.jwt_secret_key else None,
            frozenset(settings.admin_users),
        )
        if not auth.enabled and settings.host not in {"127.0.0.1", "localhost", "::1"}:
            logger.warning(
                "listening on %s without JWT_SECRET_KEY: every client that can reach it acts as the local admin",
                settings.host,
            )
        state = AppState(settings, store, registry, model, runner, auth)
        logger.info(
            "orchestrator ready: %d MCP server(s), model %s",
            len(servers),
            settings.openai_model if settings.model_configured else "not configured",
        )
        try:
            yield state
        finally:
            state.turns.cancel_all()


def lifespan(settings: Settings):
    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncGenerator[None]:
        async with open_state(settings) as state:
            app.state.assistant = state
            yield

    return _lifespan
