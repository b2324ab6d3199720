"""``SqlStore``: conversations, messages and server registrations in SQLite or PostgreSQL.

Queries are Core statements over the ORM tables and results become the frozen records of ``memory.types``: no
ORM session, identity map or lazy loading on the chat hot path. Every statement that stands alone runs in
autocommit mode (one round trip, no BEGIN/COMMIT); only ``append_messages`` needs a transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import delete, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from orchestrator.errors import Conflict, ConversationNotFound, ServerNotFound
from orchestrator.memory.models import Conversation, McpServer, Message, User
from orchestrator.memory.types import (
    ConversationRecord,
    MessageRecord,
    NewMessage,
    ServerRegistration,
    ToolCallRecord,
    UserIdentity,
)

DEFAULT_TITLE = "New conversation"

_CONVERSATION_COLUMNS = (
    Conversation.id,
    Conversation.user_id,
    Conversation.title,
    Conversation.created_at,
    Conversation.updated_at,
)
_MESSAGE_COLUMNS = (
    Message.id,
    Message.conversation_id,
    Message.seq,
    Message.role,
    Message.content,
    Message.status,
    Message.created_at,
    Message.tool_calls,
    Message.tool_call_id,
    Message.tool_name,
    Message.is_error,
    Message.model,
    Message.prompt_tokens,
    Message.completion_tokens,
    Message.started_at,
    Message.duration_ms,
    Message.error,
)
_SERVER_COLUMNS = (
    McpServer.id,
    McpServer.transport,
    McpServer.url,
    McpServer.headers,
    McpServer.tool_timeout_seconds,
    McpServer.created_by,
    McpServer.created_at,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class SqlStore:
    """Implements ``ConversationStore``, ``ServerRegistrationStore`` and ``HealthCheck`` on one async engine.

    Args:
        engine: from ``orchestrator.memory.db.create_engine``, on a database migrated to head.
        clock: the source of timestamps; tests pass a fake one to order conversations without sleeping.
    """

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        # Shares the engine's pool; a single statement is atomic on its own, so it needs no BEGIN/COMMIT.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._postgres = engine.dialect.name == "postgresql"
        self._clock = clock

    # --- users ---------------------------------------------------------------------------------------------------

    async def ensure_user(self, user: UserIdentity) -> None:
        """Create the user row, or refresh its name and e-mail.

        One statement; when nothing changed the row is left alone (no new row version, no write).
        """
        async with self._autocommit.connect() as connection:
            await self._upsert_user(connection, user, refresh=True)

    async def _upsert_user(self, connection: AsyncConnection, user: UserIdentity, *, refresh: bool) -> None:
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = dialect_insert(User).values(id=user.id, name=user.name, email=user.email, created_at=self._clock())
        if refresh:
            statement = statement.on_conflict_do_update(
                index_elements=[User.id],
                set_={"name": statement.excluded.name, "email": statement.excluded.email},
                where=or_(
                    User.name.is_distinct_from(statement.excluded.name),
                    User.email.is_distinct_from(statement.excluded.email),
                ),
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=[User.id])
        await connection.execute(statement)

    # --- conversations -------------------------------------------------------------------------------------------

    async def create_conversation(self, user_id: str, title: str | None = None) -> ConversationRecord:
        """Create an empty conversation; a user seen for the first time gets a bare user row."""
        now = self._clock()
        record = ConversationRecord(
            id=str(uuid4()), user_id=user_id, title=title or DEFAULT_TITLE, created_at=now, updated_at=now
        )
        statement = insert(Conversation).values(
            id=record.id, user_id=user_id, title=record.title, created_at=now, updated_at=now, next_seq=1
        )
        async with self._autocommit.connect() as connection:
            try:
                await connection.execute(statement)
            except IntegrityError:
                # The only constraint a fresh UUID can break is the user foreign key: callers normally run
                # ensure_user first, so this costs nothing on the usual path.
                await self._upsert_user(connection, UserIdentity(id=user_id), refresh=False)
                await connection.execute(statement)
        return record

    async def list_conversations(self, user_id: str, *, limit: int = 50, offset: int = 0) -> list[ConversationRecord]:
        """Most recently updated first (ties by id)."""
        statement = (
            select(*_CONVERSATION_COLUMNS)
            .where(Conversation.user_id == user_id)
            .order_by(Conversation.updated_at.desc(), Conversation.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._autocommit.connect() as connection:
            result = await connection.execute(statement)
            return [_conversation(row) for row in result.mappings()]

    async def get_conversation(self, user_id: str, conversation_id: str) -> ConversationRecord:
        """Raises: ConversationNotFound."""
        statement = select(*_CONVERSATION_COLUMNS).where(
            Conversation.id == conversation_id, Conversation.user_id == user_id
        )
        async with self._autocommit.connect() as connection:
            row = (await connection.execute(statement)).mappings().one_or_none()
        if row is None:
            raise ConversationNotFound(conversation_id)
        return _conversation(row)

    async def rename_conversation(self, user_id: str, conversation_id: str, title: str) -> ConversationRecord:
        """Change the title. ``updated_at`` is left alone, so renaming does not reorder the list.

        Raises: ConversationNotFound.
        """
        statement = (
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.user_id == user_id)
            .values(title=title)
            .returning(*_CONVERSATION_COLUMNS)
        )
        async with self._autocommit.connect() as connection:
            row = (await connection.execute(statement)).mappings().one_or_none()
        if row is None:
            raise ConversationNotFound(conversation_id)
        return _conversation(row)

    async def delete_conversation(self, user_id: str, conversation_id: str) -> None:
        """Delete the conversation; its messages go with it (ON DELETE CASCADE). Raises: ConversationNotFound."""
        statement = delete(Conversation).where(Conversation.id == conversation_id, Conversation.user_id == user_id)
        async with self._autocommit.connect() as connection:
            result = await connection.execute(statement)
        if result.rowcount == 0:
            raise ConversationNotFound(conversation_id)

    # --- messages ------------------------------------------------------------------------------------------------

    async def list_messages(self, user_id: str, conversation_id: str) -> list[MessageRecord]:
        """Messages in ``seq`` order. Raises: ConversationNotFound.

        One query: the outer join yields a single all-NULL message row for an empty conversation and no row at
        all for a missing or foreign one.
        """
        statement = (
            select(*_MESSAGE_COLUMNS)
            .select_from(Conversation)
            .outerjoin(Message, Message.conversation_id == Conversation.id)
            .where(Conversation.id == conversation_id, Conversation.user_id == user_id)
            .order_by(Message.seq)
        )
        async with self._autocommit.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        if not rows:
            raise ConversationNotFound(conversation_id)
        return [_message(row) for row in rows if row["id"] is not None]

    async def append_messages(
        self, user_id: str, conversation_id: str, messages: Sequence[NewMessage]
    ) -> list[MessageRecord]:
        """Append messages in one transaction, giving them the next ``seq`` numbers, and touch ``updated_at``.

        Two statements: the conversation row's ``next_seq`` is bumped first, which row-locks it (PostgreSQL) or
        takes the write lock (SQLite), so concurrent appends get disjoint, consecutive numbers.

        Raises: ConversationNotFound.
        """
        if not messages:
            await self.get_conversation(user_id, conversation_id)
            return []
        now = self._clock()
        reserve = (
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.user_id == user_id)
            .values(next_seq=Conversation.next_seq + len(messages), updated_at=now)
            .returning(Conversation.next_seq)
        )
        async with self._engine.begin() as connection:
            next_seq = (await connection.execute(reserve)).scalar_one_or_none()
            if next_seq is None:
                raise ConversationNotFound(conversation_id)
            first_seq = next_seq - len(messages)
            records = [
                _new_message_record(message, conversation_id, seq=first_seq + index, created_at=now)
                for index, message in enumerate(messages)
            ]
            await connection.execute(insert(Message), [_message_row(record) for record in records])
        return records

    # --- MCP server registrations --------------------------------------------------------------------------------

    async def list_registrations(self) -> list[ServerRegistration]:
        async with self._autocommit.connect() as connection:
            result = await connection.execute(select(*_SERVER_COLUMNS).order_by(McpServer.id))
            return [_registration(row) for row in result.mappings()]

    async def add_registration(self, registration: ServerRegistration) -> ServerRegistration:
        """Store a registration; ``created_at`` defaults to now. Raises: Conflict when the id is taken."""
        stored = dataclasses.replace(
            registration,
            headers=dict(registration.headers),
            created_at=_as_utc(registration.created_at) or self._clock(),
        )
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = (
            dialect_insert(McpServer)
            .values(
                id=stored.id,
                transport=stored.transport,
                url=stored.url,
                headers=stored.headers,
                tool_timeout_seconds=stored.tool_timeout_seconds,
                created_by=stored.created_by,
                created_at=stored.created_at,
            )
            .on_conflict_do_nothing(index_elements=[McpServer.id])
        )
        async with self._autocommit.connect() as connection:
            result = await connection.execute(statement)
        if result.rowcount == 0:
            raise Conflict(f"an MCP server with id {registration.id!r} is already registered")
        return stored

    async def remove_registration(self, server_id: str) -> None:
        """Raises: ServerNotFound."""
        async with self._autocommit.connect() as connection:
            result = await connection.execute(delete(McpServer).where(McpServer.id == server_id))
        if result.rowcount == 0:
            raise ServerNotFound(server_id)

    # --- health --------------------------------------------------------------------------------------------------

    async def ping(self) -> None:
        """Raises whatever the driver raises when the database does not answer."""
        async with self._autocommit.connect() as connection:
            await connection.execute(text("SELECT 1"))


# --- rows <-> records ----------------------------------------------------------------------------------------------


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _conversation(row: RowMapping) -> ConversationRecord:
    return ConversationRecord(
        id=row["id"],
        user_id=row["user_id"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _new_message_record(message: NewMessage, conversation_id: str, *, seq: int, created_at: datetime) -> MessageRecord:
    return MessageRecord(
        id=str(uuid4()),
        conversation_id=conversation_id,
        seq=seq,
        role=message.role,
        content=message.content,
        status=message.status,
        created_at=created_at,
        tool_calls=tuple(message.tool_calls),
        tool_call_id=message.tool_call_id,
        tool_name=message.tool_name,
        is_error=message.is_error,
        model=message.model,
        prompt_tokens=message.prompt_tokens,
        completion_tokens=message.completion_tokens,
        started_at=_as_utc(message.started_at),
        duration_ms=message.duration_ms,
        error=message.error,
    )


def _message_row(record: MessageRecord) -> dict[str, Any]:
    row = {column.key: getattr(record, column.key) for column in _MESSAGE_COLUMNS}
    row["tool_calls"] = [dataclasses.asdict(call) for call in record.tool_calls] or None
    return row


def _message(row: RowMapping) -> MessageRecord:
    tool_calls: list[dict[str, str]] | None = row["tool_calls"]
    return MessageRecord(
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        role=row["role"],
        content=row["content"],
        status=row["status"],
        created_at=row["created_at"],
        tool_calls=tuple(
            ToolCallRecord(id=call["id"], name=call["name"], arguments=call["arguments"]) for call in tool_calls or ()
        ),
        tool_call_id=row["tool_call_id"],
        tool_name=row["tool_name"],
        is_error=row["is_error"],
        model=row["model"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        started_at=row["started_at"],
        duration_ms=row["duration_ms"],
        error=row["error"],
    )


def _registration(row: RowMapping) -> ServerRegistration:
    return ServerRegistration(
        id=row["id"],
        transport=row["transport"],
        url=row["url"],
        headers=row["headers"],
        tool_timeout_seconds=row["tool_timeout_seconds"],
        created_by=row["created_by"],
        created_at=row["created_at"],
    )
