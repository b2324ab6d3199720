"""``SqlStore``: conversations, messages, server registrations and approved tools in SQLite or PostgreSQL.

The SQL lives in ``memory.queries`` as sync functions over a ``Connection``; this class gives them their async
interface and decides how each runs on the ``Database``: a lone statement in autocommit mode (one round trip, no
BEGIN/COMMIT), several statements in one transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from uuid import uuid4

from sqlalchemy.engine import Connection

from orchestrator.errors import Conflict, ServerNotFound
from orchestrator.memory import grants, queries, turns, usage
from orchestrator.memory.db import Database, PoolStatus
from orchestrator.memory.grants import StoredClient, StoredGrant
from orchestrator.memory.queries import DEFAULT_TITLE
from orchestrator.memory.turns import TurnRecord, TurnState
from orchestrator.memory.types import (
    ConversationRecord,
    MessageRecord,
    NewMessage,
    NewTurn,
    ServerRegistration,
    ToolApproval,
    UserIdentity,
)

__all__ = ["DEFAULT_TITLE", "SqlStore", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class SqlStore:
    """Implements ``ConversationStore``, ``TurnStore``, ``ServerRegistrationStore``, ``ToolApprovalStore``,
    ``UsageStore``, ``OAuthGrantStore`` and ``HealthCheck``.

    Args:
        database: from ``orchestrator.memory.db.open_database``, on a database migrated to head; the caller
            disposes it.
        clock: the source of timestamps; tests pass a fake one to order conversations without sleeping.
    """

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._database = database
        self._postgres = database.dialect == "postgresql"
        self._clock = clock

    @property
    def database(self) -> Database:
        """The database it runs on, for features with SQL of their own (API keys, conversation search)."""
        return self._database

    # --- users ---------------------------------------------------------------------------------------------------

    async def ensure_user(self, user: UserIdentity) -> None:
        """Create the user row, or refresh its name and e-mail.

        One statement; when nothing changed the row is left alone (no new row version, no write).
        """
        now = self._clock()
        await self._database.run(lambda connection: queries.ensure_user(connection, user, now))

    # --- conversations -------------------------------------------------------------------------------------------

    async def create_conversation(self, user_id: str, title: str | None = None) -> ConversationRecord:
        """Create an empty conversation; a user seen for the first time gets a bare user row."""
        now = self._clock()
        record = ConversationRecord(
            id=str(uuid4()), user_id=user_id, title=title or DEFAULT_TITLE, created_at=now, updated_at=now
        )
        await self._database.run(lambda connection: queries.create_conversation(connection, record))
        return record

    async def list_conversations(
        self, user_id: str, *, limit: int = 50, offset: int = 0, title_contains: str | None = None
    ) -> list[ConversationRecord]:
        """Most recently updated first (ties by id), optionally only those whose title contains a text."""
        return await self._database.run(
            lambda connection: queries.list_conversations(connection, user_id, limit, offset, title_contains)
        )

    async def get_conversation(self, user_id: str, conversation_id: str) -> ConversationRecord:
        """Raises: ConversationNotFound."""
        return await self._database.run(
            lambda connection: queries.get_conversation(connection, user_id, conversation_id)
        )

    async def rename_conversation(self, user_id: str, conversation_id: str, title: str) -> ConversationRecord:
        """Change the title. ``updated_at`` is left alone, so renaming does not reorder the list.

        Raises: ConversationNotFound.
        """
        return await self._database.run(
            lambda connection: queries.rename_conversation(connection, user_id, conversation_id, title)
        )

    async def delete_conversation(self, user_id: str, conversation_id: str) -> None:
        """Delete the conversation and its messages. Raises: ConversationNotFound."""
        await self._database.run(lambda connection: queries.delete_conversation(connection, user_id, conversation_id))

    # --- messages ------------------------------------------------------------------------------------------------

    async def list_messages(self, user_id: str, conversation_id: str) -> list[MessageRecord]:
        """Messages in ``seq`` order; one query. Raises: ConversationNotFound."""
        return await self._database.run(lambda connection: queries.list_messages(connection, user_id, conversation_id))

    async def append_messages(
        self, user_id: str, conversation_id: str, messages: Sequence[NewMessage], *, durable: bool = True
    ) -> list[MessageRecord]:
        """Append messages atomically, giving them the next ``seq`` numbers, and touch ``updated_at``.

        A transaction of two statements (reserve the numbers, insert), so concurrent appends get disjoint,
        consecutive numbers; on PostgreSQL one message is a single statement (a data-modifying CTE). With
        ``durable=False`` PostgreSQL acknowledges the commit before flushing it (see ``Database.run``).

        Raises: ConversationNotFound.
        """
        if not messages:
            await self.get_conversation(user_id, conversation_id)
            return []
        now = self._clock()
        if self._postgres and len(messages) == 1:
            [message] = messages
            record = await self._database.run(
                lambda connection: queries.append_one_postgres(connection, user_id, conversation_id, message, now),
                relaxed=not durable,
            )
            return [record]
        return await self._database.run_in_transaction(
            lambda connection: queries.append_messages(connection, user_id, conversation_id, messages, now)
        )

    async def start_turn(
        self, user_id: str, conversation_id: str, message: NewMessage, *, title: str | None, turn: NewTurn | None = None
    ) -> tuple[list[MessageRecord], MessageRecord]:
        """Append the user's ``message`` and return (the messages before it, the stored message).

        Reserve the next ``seq`` (touching ``updated_at``, and setting the title to ``title`` when given and the
        conversation has no messages and the default title yet), insert the message, read the history. SQLite: one
        transaction of three statements. PostgreSQL: two statements, each atomic: the reservation and insert as
        one, then the history (a fresh snapshot that sees every message numbered before ours).

        With ``turn``, the turn is stored ``running`` in the same transaction (on PostgreSQL too).

        Raises: ConversationNotFound.
        """
        now = self._clock()
        if turn is not None:
            start = queries.start_turn_postgres if self._postgres else queries.start_turn

            def start_with_turn(connection: Connection) -> tuple[list[MessageRecord], MessageRecord]:
                history, record = start(connection, user_id, conversation_id, message, now, title=title)
                turns.insert_turn(connection, turn, user_id, conversation_id, record.id, now)
                return history, record

            return await self._database.run_in_transaction(start_with_turn)
        if self._postgres:
            return await self._database.run(
                lambda connection: queries.start_turn_postgres(
                    connection, user_id, conversation_id, message, now, title=title
                )
            )
        return await self._database.run_in_transaction(
            lambda connection: queries.start_turn(connection, user_id, conversation_id, message, now, title=title)
        )

    # --- turns ---------------------------------------------------------------------------------------------------

    async def latest_turn(self, user_id: str, conversation_id: str) -> TurnRecord | None:
        return await self._database.run(lambda connection: turns.latest_turn(connection, user_id, conversation_id))

    async def beat_turn(self, turn_id: str, owner: str) -> bool:
        now = self._clock()
        return await self._database.run(
            lambda connection: turns.beat_turn(connection, turn_id, owner, now), relaxed=True
        )

    async def end_turn(self, turn_id: str, owner: str, status: TurnState) -> None:
        now = self._clock()
        await self._database.run(lambda connection: turns.end_turn(connection, turn_id, owner, status, now))

    async def release_turn(self, turn_id: str, owner: str) -> None:
        await self._database.run(lambda connection: turns.release_turn(connection, turn_id, owner))

    async def stale_turns(self, stale_before: datetime, *, limit: int = 100) -> list[TurnRecord]:
        return await self._database.run(lambda connection: turns.stale_turns(connection, stale_before, limit))

    async def claim_turn(self, turn_id: str, owner: str, stale_before: datetime) -> TurnRecord | None:
        now = self._clock()
        return await self._database.run_in_transaction(
            lambda connection: turns.claim_turn(connection, turn_id, owner, stale_before, now)
        )

    # --- MCP server registrations --------------------------------------------------------------------------------

    async def list_registrations(self) -> list[ServerRegistration]:
        return await self._database.run(queries.list_registrations)

    async def add_registration(self, registration: ServerRegistration) -> ServerRegistration:
        """Store a registration; ``created_at`` defaults to now. Raises: Conflict when the id is taken."""
        stored = dataclasses.replace(
            registration,
            headers=dict(registration.headers),
            created_at=queries.as_utc(registration.created_at) or self._clock(),
        )
        if not await self._database.run(lambda connection: queries.add_registration(connection, stored)):
            raise Conflict(f"an MCP server with id {registration.id!r} is already registered")
        return stored

    async def remove_registration(self, server_id: str) -> None:
        """Raises: ServerNotFound."""
        if not await self._database.run(lambda connection: queries.remove_registration(connection, server_id)):
            raise ServerNotFound(server_id)

    # --- approved MCP tool definitions -----------------------------------------------------------------------------

    async def list_tool_approvals(self) -> list[ToolApproval]:
        return await self._database.run(queries.list_tool_approvals)

    async def add_tool_approval(self, approval: ToolApproval) -> ToolApproval:
        """Store ``approval`` unless its tool has one already; returns the one stored (an existing one wins).

        Replicas trusting a tool on first use at the same time thus agree on one definition.
        """
        return await self._database.run_in_transaction(
            lambda connection: queries.add_tool_approval(connection, approval)
        )

    async def set_tool_approval(self, approval: ToolApproval) -> None:
        """Store ``approval``, replacing its tool's previous one (one statement)."""
        await self._database.run(lambda connection: queries.set_tool_approval(connection, approval))

    # --- users' grants to OAuth-protected MCP servers -------------------------------------------------------------

    async def get_grant(self, user_id: str, server_id: str) -> StoredGrant | None:
        return await self._database.run(lambda connection: grants.get_grant(connection, user_id, server_id))

    async def put_grant(self, grant: StoredGrant) -> None:
        await self._database.run(lambda connection: grants.put_grant(connection, grant))

    async def delete_grants(self, user_id: str, server_id: str) -> list[StoredGrant]:
        return await self._database.run_in_transaction(
            lambda connection: grants.delete_grants(connection, user_id, server_id)
        )

    async def granted_servers(self, user_id: str) -> list[str]:
        return await self._database.run(lambda connection: grants.granted_servers(connection, user_id))

    async def get_client(self, server_id: str) -> StoredClient | None:
        return await self._database.run(lambda connection: grants.get_client(connection, server_id))

    async def put_client(self, client: StoredClient) -> None:
        await self._database.run(lambda connection: grants.put_client(connection, client))

    # --- token usage ---------------------------------------------------------------------------------------------

    async def record_usage(
        self, user_id: str, conversation_id: str, model: str, prompt_tokens: int, completion_tokens: int
    ) -> None:
        """Add one model call's tokens to today's (UTC) row; one statement, committed without waiting for the disk.

        Losing it to a crash of the database server costs a few tokens of accounting, never a conversation.
        """
        now = self._clock()
        day = now.astimezone(UTC).date()
        await self._database.run(
            lambda connection: usage.record_usage(
                connection, user_id, conversation_id, model, day, prompt_tokens, completion_tokens, now
            ),
            relaxed=True,
        )

    async def tokens_used(self, user_id: str, day: date) -> int:
        return await self._database.run(lambda connection: usage.tokens_used(connection, user_id, day))

    async def usage_report(
        self, user_id: str | None, since: date, until: date, *, limit: int = 100
    ) -> usage.UsageReport:
        return await self._database.run(lambda connection: usage.usage_report(connection, user_id, since, until, limit))

    # --- health --------------------------------------------------------------------------------------------------

    def pool_status(self) -> PoolStatus:
        return self._database.pool_status()

    async def ping(self) -> None:
        """Raises whatever the driver raises when the database does not answer."""
        await self._database.run(queries.ping)
