"""The long-lived parts of the service, opened at start-up and closed at shutdown by one owner."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import anyio
from fastapi import FastAPI
from redis.asyncio import Redis

from orchestrator.apikeys.service import ApiKeys
from orchestrator.apikeys.store import SqlApiKeyStore
from orchestrator.approvals.policy import Roles
from orchestrator.approvals.service import CallApprovals, RegistryPolicies
from orchestrator.approvals.store import ApprovalStore
from orchestrator.auth import Authenticator, KnownUsers
from orchestrator.cluster.bus import LocalBus, MessageBus, RedisBus
from orchestrator.cluster.event_log import LayeredEventLog, RedisEventLog
from orchestrator.cluster.redis import create_redis, describe_redis
from orchestrator.cluster.servers import ServerSync
from orchestrator.cluster.stops import TurnStops
from orchestrator.discovery.watcher import kubernetes_discovery
from orchestrator.llm.openai_model import OpenAIChatModel
from orchestrator.llm.types import ChatModel
from orchestrator.llm.unconfigured import UnconfiguredChatModel
from orchestrator.loop.active import ActiveTurns
from orchestrator.loop.event_log import EventLog, MemoryEventLog
from orchestrator.loop.runner import LoopLimits, TurnRunner
from orchestrator.loop.turns import ResumePolicy, TurnSupervisor
from orchestrator.loop.usage import TokenMeter
from orchestrator.mcp.oauth.cipher import TokenCipher, development_key
from orchestrator.mcp.oauth.flow import ClientIdentity
from orchestrator.mcp.oauth.grants import GrantVault
from orchestrator.mcp.oauth.inbox import CallbackInbox, LocalInbox, RedisInbox
from orchestrator.mcp.oauth.locks import LocalLocks, RedisLocks, RefreshLocks
from orchestrator.mcp.oauth.signins import SignIns
from orchestrator.mcp.oauth.tokens import TokenRefresher
from orchestrator.mcp.pinning import ToolApprovals
from orchestrator.mcp.registry import McpRegistry
from orchestrator.mcp.sources import configured_servers
from orchestrator.memory.db import open_database, redact_url
from orchestrator.memory.memories import Memories
from orchestrator.memory.migrate import upgrade_database
from orchestrator.memory.store import SqlStore
from orchestrator.retrieval import open_retrieval, tools_kept_warm
from orchestrator.settings import Settings
from orchestrator.telemetry.dbpool import watch_pool
from orchestrator.telemetry.metrics import MCP_SERVER_UP
from orchestrator.telemetry.model import TracedChatModel
from orchestrator.telemetry.tools import ToolCallTelemetry

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
    bus: MessageBus
    server_sync: ServerSync
    stops: TurnStops
    meter: TokenMeter
    turns: ActiveTurns
    api_keys: ApiKeys
    supervisor: TurnSupervisor
    """Runs turns apart from their requests and resumes those a dead replica left behind."""
    events: EventLog
    """Every turn's events, for the clients that follow it (Redis Streams with ``REDIS_URL``)."""
    redis: Redis | None = None
    """The shared Redis client (``REDIS_URL``), for anything that needs Redis; ``None`` without one."""
    memories: Memories | None = None
    approvals: CallApprovals | None = None
    """Tool call policies, the user's approvals and their audit log."""
    known_users: KnownUsers = field(default_factory=KnownUsers)
    started_at: float = field(default_factory=time.monotonic)


CALLBACK_PATH = "/api/oauth/callback"
READY_TIMEOUT_SECONDS = 60.0
"""Interrupted turns are resumed once the MCP servers had their first connection attempt, or after this long."""
CLIENT_METADATA_PATH = "/oauth/client-metadata.json"


def token_cipher(settings: Settings) -> TokenCipher:
    """``TOKEN_ENCRYPTION_KEY``, or in development a key made once in the data directory."""
    if settings.token_encryption_key is not None:
        return TokenCipher.from_setting(settings.token_encryption_key.get_secret_value())
    return TokenCipher([development_key(settings.data_dir)])


def client_identity(settings: Settings) -> ClientIdentity:
    """The assistant as an OAuth client of protected MCP servers, under its public address."""
    base = settings.resolved_public_url
    # Authorization servers fetch a client ID metadata document themselves, so it must be on a public https URL.
    metadata_url = f"{base}{CLIENT_METADATA_PATH}" if base.startswith("https://") else None
    return ClientIdentity(redirect_uri=f"{base}{CALLBACK_PATH}", metadata_url=metadata_url)


def open_sign_ins(settings: Settings, store: SqlStore, redis: Redis | None) -> tuple[SignIns, TokenRefresher]:
    """Users' sign-ins to protected MCP servers: sealed grants, refreshes (one at a time across replicas with Redis)."""
    locks: RefreshLocks = RedisLocks(redis) if redis is not None else LocalLocks()
    inbox: CallbackInbox = RedisInbox(redis) if redis is not None else LocalInbox()
    vault = GrantVault(store, token_cipher(settings))
    refresher = TokenRefresher(vault, locks)
    sign_ins = SignIns(
        vault, refresher, inbox, client_identity(settings), timeout_seconds=settings.interaction_timeout_seconds
    )
    return sign_ins, refresher


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
        redis = _open_redis(settings)
        if redis is not None:
            stack.push_async_callback(redis.aclose)
        bus = await stack.enter_async_context(
            RedisBus(redis, settings.redis_key_prefix) if redis is not None else LocalBus()
        )
        database = open_database(
            database_url, pool_size=settings.database_pool_size, max_overflow=settings.database_max_overflow
        )
        stack.push_async_callback(database.dispose)
        watch_pool(database)
        store = SqlStore(database)
        server_sync = ServerSync(bus, store, settings)
        servers = configured_servers(settings, await store.list_registrations())
        approvals = ToolApprovals(store) if settings.mcp_tool_approval == "pin" else None
        retrieval = await stack.enter_async_context(open_retrieval(settings))
        sign_ins, refresher = open_sign_ins(settings, store, redis)
        await stack.enter_async_context(sign_ins)
        gauges = _ServerGauges()
        registry = await stack.enter_async_context(
            McpRegistry(
                servers,
                tool_result_max_chars=settings.tool_result_max_chars,
                approvals=approvals,
                on_change=_both(gauges.update, retrieval.watch_tools()),
                on_tools_changed=server_sync.tools_changed,
                observer=ToolCallTelemetry(record_content=settings.otel_record_content),
                sign_ins=sign_ins,
                refresher=refresher,
                user_idle_seconds=settings.mcp_user_connection_idle_seconds,
                max_concurrent_calls=settings.mcp_max_concurrent_calls,
            )
        )
        gauges.registry = registry
        gauges.update()
        server_sync.attach(registry)
        background = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(background.cancel_scope.cancel)  # runs first on exit: the group then has nothing to wait for
        await background.start(server_sync.run)
        await stack.enter_async_context(tools_kept_warm(retrieval.selector, registry.tools))
        if settings.mcp_kubernetes_discovery:
            await stack.enter_async_context(kubernetes_discovery(settings, registry))
        model = TracedChatModel(build_model(settings), record_content=settings.otel_record_content)
        stack.push_async_callback(model.aclose)
        meter = TokenMeter(store, settings.daily_token_quota_for)
        call_approvals = await stack.enter_async_context(
            CallApprovals(
                ApprovalStore(database),
                bus,
                RegistryPolicies(registry),
                Roles(frozenset(settings.admin_users), everyone_is_admin=settings.jwt_secret_key is None),
                timeout_seconds=settings.tool_approval_timeout_seconds,
            )
        )
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
            meter=meter,
            selector=retrieval.selector,
            memory=retrieval.recall,
            gate=call_approvals,
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
        turns = ActiveTurns()
        events = open_event_log(settings, redis)
        supervisor = TurnSupervisor(
            runner,
            store,
            events,
            turns,
            registry,
            owner=bus.node_id,
            heartbeat_seconds=settings.turn_heartbeat_seconds,
            policy=ResumePolicy(settings.turn_resume, settings.turn_resume_max_attempts),
            ready=lambda: registry.wait_until_settled(READY_TIMEOUT_SECONDS),
            waiting_calls=call_approvals.waiting_calls,
        )
        await background.start(supervisor.run)
        state = AppState(
            settings,
            store,
            registry,
            model,
            runner,
            auth,
            bus=bus,
            server_sync=server_sync,
            stops=TurnStops(bus, turns),
            meter=meter,
            turns=turns,
            api_keys=ApiKeys(SqlApiKeyStore(database), max_per_user=settings.api_keys_per_user),
            supervisor=supervisor,
            events=events,
            redis=redis,
            memories=retrieval.memories,
            approvals=call_approvals,
        )
        logger.info(
            "orchestrator ready: %d MCP server(s), model %s",
            len(servers),
            settings.openai_model if settings.model_configured else "not configured",
        )
        try:
            yield state
        finally:
            supervisor.hand_over()  # the replies running here are resumed by another replica, or after a restart
            state.turns.cancel_all()


def open_event_log(settings: Settings, redis: Redis | None) -> EventLog:
    """Turns' events in Redis (every replica can follow every turn), or in this process without ``REDIS_URL``."""
    local = MemoryEventLog(
        max_events=settings.turn_events_max, retention_seconds=settings.turn_events_retention_seconds
    )
    if redis is None:
        return local
    shared = RedisEventLog(
        redis,
        settings.redis_key_prefix,
        max_events=settings.turn_events_max,
        retention_seconds=settings.turn_events_retention_seconds,
        block_seconds=settings.redis_timeout_seconds / 2,
    )
    return LayeredEventLog(local, shared)


def _open_redis(settings: Settings) -> Redis | None:
    if settings.redis_url is None:
        logger.info("no REDIS_URL: rate limits and messages between replicas stay in this process")
        return None
    logger.info("Redis at %s", describe_redis(settings.redis_url))
    return create_redis(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds)


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    """One registry observer that tells two."""

    def changed() -> None:
        first()
        second()

    return changed


class _ServerGauges:
    """Keeps ``mcp_server_up`` in step with the registry."""

    def __init__(self) -> None:
        self.registry: McpRegistry | None = None
        self._known: set[str] = set()

    def update(self) -> None:
        if self.registry is None:
            return
        servers = self.registry.servers()
        for info in servers:
            MCP_SERVER_UP.labels(info.id).set(1 if info.status == "healthy" else 0)
        current = {info.id for info in servers}
        for gone in self._known - current:
            MCP_SERVER_UP.labels(gone).set(0)
            MCP_SERVER_UP.remove(gone)
        self._known = current


def lifespan(settings: Settings):
    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncGenerator[None]:
        async with open_state(settings) as state:
            app.state.assistant = state
            yield

    return _lifespan
