"""The store's SQL: one sync function per operation, over a SQLAlchemy ``Connection``, for both backends.

``SqlStore`` runs these through a ``Database`` (``run`` for single statements, ``run_in_transaction`` for the
rest). Statements are built once, at import, with named parameters: building a Core statement per call and
computing its cache key costs more than executing it on SQLite (about 100 µs against 15 µs). Results become the
frozen records of ``memory.types``: no ORM session, identity map or lazy loading on the chat hot path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import Executable, Text, and_, bindparam, case, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from orchestrator.errors import ConversationNotFound
from orchestrator.memory.models import ApprovedTool, Conversation, McpServer, Message, User, UTCDateTime
from orchestrator.memory.types import (
    ConversationRecord,
    MessageRecord,
    NewMessage,
    ServerRegistration,
    ToolApproval,
    ToolCallRecord,
    UserIdentity,
)
from orchestrator.text import safe_text

DEFAULT_TITLE = "New conversation"

# Each tuple is in the order of its record's fields: rows become records positionally.
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
    McpServer.send_user_id,
    McpServer.use_service_token,
    McpServer.max_concurrent_calls,
)
_TOOL_APPROVAL_COLUMNS = (
    ApprovedTool.server_id,
    ApprovedTool.tool,
    ApprovedTool.definition_hash,
    ApprovedTool.definition,
    ApprovedTool.approved_by,
    ApprovedTool.approved_at,
)

# Parameter names differ from column names: SQLAlchemy reserves those for the SET clause of an UPDATE.
_OWNED_CONVERSATION = and_(Conversation.id == bindparam("conversation"), Conversation.user_id == bindparam("owner"))


def _refresh_user(dialect_insert: Any) -> Any:
    statement = dialect_insert(User)
    return statement.on_conflict_do_update(
        index_elements=[User.id],
        set_={"name": statement.excluded.name, "email": statement.excluded.email},
        # When nothing changed the row is left alone (no new row version, no write).
        where=or_(
            User.name.is_distinct_from(statement.excluded.name),
            User.email.is_distinct_from(statement.excluded.email),
        ),
    )


# Upserts are spelled per dialect; a connection picks its own by ``connection.dialect.name``.
_REFRESH_USER = {"postgresql": _refresh_user(postgresql.insert), "sqlite": _refresh_user(sqlite.insert)}
_ADD_USER = {
    "postgresql": postgresql.insert(User).on_conflict_do_nothing(index_elements=[User.id]),
    "sqlite": sqlite.insert(User).on_conflict_do_nothing(index_elements=[User.id]),
}
_ADD_SERVER = {
    "postgresql": postgresql.insert(McpServer).on_conflict_do_nothing(index_elements=[McpServer.id]),
    "sqlite": sqlite.insert(McpServer).on_conflict_do_nothing(index_elements=[McpServer.id]),
}
_TOOL_KEY = [ApprovedTool.server_id, ApprovedTool.tool]
_ADD_TOOL_APPROVAL = {
    "postgresql": postgresql.insert(ApprovedTool).on_conflict_do_nothing(index_elements=_TOOL_KEY),
    "sqlite": sqlite.insert(ApprovedTool).on_conflict_do_nothing(index_elements=_TOOL_KEY),
}


def _replace_tool_approval(dialect_insert: Any) -> Any:
    statement = dialect_insert(ApprovedTool)
    replaced = ("definition_hash", "definition", "approved_by", "approved_at")
    return statement.on_conflict_do_update(
        index_elements=_TOOL_KEY, set_={name: statement.excluded[name] for name in replaced}
    )


_SET_TOOL_APPROVAL = {
    "postgresql": _replace_tool_approval(postgresql.insert),
    "sqlite": _replace_tool_approval(sqlite.insert),
}

_INSERT_CONVERSATION = insert(Conversation)
_LIST_CONVERSATIONS = (
    select(*_CONVERSATION_COLUMNS)
    .where(Conversation.user_id == bindparam("owner"))
    .order_by(Conversation.updated_at.desc(), Conversation.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
# Title search: a case-insensitive substring, with LIKE's wildcards in the search text taken literally.
_SEARCH_CONVERSATIONS = _LIST_CONVERSATIONS.where(
    func.lower(Conversation.title).like(func.lower(bindparam("pattern")), escape="\\")
)
_GET_CONVERSATION = select(*_CONVERSATION_COLUMNS).where(_OWNED_CONVERSATION)
# ``updated_at`` is left alone, so renaming does not reorder the list.
_RENAME_CONVERSATION = (
    update(Conversation)
    .where(_OWNED_CONVERSATION)
    .values(title=bindparam("new_title"))
    .returning(*_CONVERSATION_COLUMNS)
)
# Messages go with it (ON DELETE CASCADE).
_DELETE_CONVERSATION = delete(Conversation).where(_OWNED_CONVERSATION)

# The outer join yields a single all-NULL message row for an empty conversation and no row at all for a missing
# or foreign one: existence, ownership and the messages in one query. (Its rows are untyped: their columns are
# NULL on that one row whatever the model says.)
_LIST_MESSAGES: Executable = (
    select(*_MESSAGE_COLUMNS)
    .select_from(Conversation)
    .outerjoin(Message, Message.conversation_id == Conversation.id)
    .where(_OWNED_CONVERSATION)
    .order_by(Message.seq)
)
_HISTORY = (
    select(*_MESSAGE_COLUMNS)
    .where(Message.conversation_id == bindparam("conversation"), Message.seq < bindparam("before"))
    .order_by(Message.seq)
)
_INSERT_MESSAGES = insert(Message)

# Reserving ``seq`` numbers bumps the conversation row first, which row-locks it (PostgreSQL; SQLite holds the
# write lock from BEGIN IMMEDIATE), so concurrent appends get disjoint, consecutive numbers. It also checks
# ownership and touches ``updated_at``.
_RESERVE_VALUES = {
    "next_seq": Conversation.next_seq + bindparam("count"),
    "updated_at": bindparam("now", type_=UTCDateTime()),
}
_RESERVE_SEQ = update(Conversation).where(_OWNED_CONVERSATION).values(_RESERVE_VALUES).returning(Conversation.next_seq)
# The same, also naming a conversation that has no messages and still the default title.
_FIRST_TITLE = case(
    (
        and_(Conversation.next_seq == 1, Conversation.title == DEFAULT_TITLE),
        bindparam("first_title", type_=Text()),
    ),
    else_=Conversation.title,
)
_RESERVE_SEQ_AND_NAME = (
    update(Conversation)
    .where(_OWNED_CONVERSATION)
    .values(_RESERVE_VALUES | {"title": _FIRST_TITLE})
    .returning(Conversation.next_seq)
)


# PostgreSQL runs a one-message append, and the start of a turn, as ONE statement: data-modifying CTEs execute
# atomically in autocommit, saving the BEGIN/COMMIT and the extra round trips of the portable transaction (each
# round trip is a wake-up of the database backend). SQLite cannot put an UPDATE in a CTE, nor needs to: its
# statements cost microseconds in-process.
def _reserved(values: dict[str, Any]) -> Any:
    return (
        update(Conversation)
        .where(_OWNED_CONVERSATION)
        .values(values)
        .returning((Conversation.next_seq - bindparam("count")).label("seq"))
        .cte("reserved")
    )


def _insert_at_reserved_seq(reserved: Any) -> Any:
    columns = list(_MESSAGE_COLUMNS)
    values = [
        reserved.c.seq if column.key == "seq" else bindparam(f"m_{column.key}", type_=column.type) for column in columns
    ]
    return insert(Message).from_select([column.key for column in columns], select(*values))


_PG_RESERVED = _reserved(_RESERVE_VALUES)
_PG_APPEND_ONE: Executable = _insert_at_reserved_seq(_PG_RESERVED).returning(Message.seq)
_PG_RESERVED_AND_NAMED = _reserved(_RESERVE_VALUES | {"title": _FIRST_TITLE})
_PG_APPEND_ONE_AND_NAME: Executable = _insert_at_reserved_seq(_PG_RESERVED_AND_NAMED).returning(Message.seq)

_LIST_SERVERS = select(*_SERVER_COLUMNS).order_by(McpServer.id)
_DELETE_SERVER = delete(McpServer).where(McpServer.id == bindparam("server"))
_LIST_TOOL_APPROVALS = select(*_TOOL_APPROVAL_COLUMNS).order_by(ApprovedTool.server_id, ApprovedTool.tool)
_GET_TOOL_APPROVAL = select(*_TOOL_APPROVAL_COLUMNS).where(
    ApprovedTool.server_id == bindparam("server"), ApprovedTool.tool == bindparam("tool_name")
)
_PING = text("SELECT 1")


# --- users ---------------------------------------------------------------------------------------------------------


def ensure_user(connection: Connection, user: UserIdentity, now: datetime) -> None:
    _upsert_user(connection, user, now, refresh=True)


def _upsert_user(connection: Connection, user: UserIdentity, now: datetime, *, refresh: bool) -> None:
    statement = (_REFRESH_USER if refresh else _ADD_USER)[connection.dialect.name]
    connection.execute(statement, {"id": user.id, "name": user.name, "email": user.email, "created_at": now})


# --- conversations -------------------------------------------------------------------------------------------------


def create_conversation(connection: Connection, record: ConversationRecord) -> None:
    """Insert ``record``; a user seen for the first time gets a bare user row."""
    row = {
        "id": record.id,
        "user_id": record.user_id,
        "title": record.title,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "next_seq": 1,
    }
    try:
        connection.execute(_INSERT_CONVERSATION, row)
    except IntegrityError:
        # The only constraint a fresh UUID can break is the user foreign key: callers normally run ensure_user
        # first, so this costs nothing on the usual path.
        _upsert_user(connection, UserIdentity(id=record.user_id), record.created_at, refresh=False)
        connection.execute(_INSERT_CONVERSATION, row)


def list_conversations(
    connection: Connection, user_id: str, limit: int, offset: int, title_contains: str | None = None
) -> list[ConversationRecord]:
    parameters: dict[str, object] = {"owner": user_id, "limit": limit, "offset": offset}
    if not title_contains:
        rows = connection.execute(_LIST_CONVERSATIONS, parameters)
    else:
        escaped = title_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = connection.execute(_SEARCH_CONVERSATIONS, {**parameters, "pattern": f"%{escaped}%"})
    return [ConversationRecord(*row) for row in rows]


def get_conversation(connection: Connection, user_id: str, conversation_id: str) -> ConversationRecord:
    """Raises: ConversationNotFound."""
    row = connection.execute(_GET_CONVERSATION, {"conversation": conversation_id, "owner": user_id}).one_or_none()
    if row is None:
        raise ConversationNotFound(conversation_id)
    return ConversationRecord(*row)


def rename_conversation(connection: Connection, user_id: str, conversation_id: str, title: str) -> ConversationRecord:
    """Raises: ConversationNotFound."""
    parameters = {"conversation": conversation_id, "owner": user_id, "new_title": title}
    row = connection.execute(_RENAME_CONVERSATION, parameters).one_or_none()
    if row is None:
        raise ConversationNotFound(conversation_id)
    return ConversationRecord(*row)


def delete_conversation(connection: Connection, user_id: str, conversation_id: str) -> None:
    """Raises: ConversationNotFound."""
    result = connection.execute(_DELETE_CONVERSATION, {"conversation": conversation_id, "owner": user_id})
    if result.rowcount == 0:
        raise ConversationNotFound(conversation_id)


# --- messages ------------------------------------------------------------------------------------------------------


def list_messages(connection: Connection, user_id: str, conversation_id: str) -> list[MessageRecord]:
    """Raises: ConversationNotFound."""
    rows = connection.execute(_LIST_MESSAGES, {"conversation": conversation_id, "owner": user_id}).all()
    if not rows:
        raise ConversationNotFound(conversation_id)
    # An empty conversation's one row has NULL message columns.
    return [_message(row) for row in rows if row[0] is not None]


def append_messages(
    connection: Connection, user_id: str, conversation_id: str, messages: Sequence[NewMessage], now: datetime
) -> list[MessageRecord]:
    """Two statements; run in a transaction. Raises: ConversationNotFound."""
    first_seq = _reserve_seq(connection, user_id, conversation_id, len(messages), now, title=None)
    records = [
        _new_message_record(message, conversation_id, seq=first_seq + index, created_at=now)
        for index, message in enumerate(messages)
    ]
    connection.execute(_INSERT_MESSAGES, [_message_row(record) for record in records])
    return records


def append_one_postgres(
    connection: Connection, user_id: str, conversation_id: str, message: NewMessage, now: datetime
) -> MessageRecord:
    """One statement, atomic on its own (PostgreSQL only). Raises: ConversationNotFound."""
    record, parameters = _one_message(user_id, conversation_id, message, now)
    return _insert_one(connection, _PG_APPEND_ONE, record, parameters)


def _one_message(
    user_id: str, conversation_id: str, message: NewMessage, now: datetime
) -> tuple[MessageRecord, dict[str, Any]]:
    """The record of a message about to be appended (its ``seq`` still unknown) and the statement's parameters."""
    record = _new_message_record(message, conversation_id, seq=0, created_at=now)
    parameters = {"conversation": conversation_id, "owner": user_id, "count": 1, "now": now}
    parameters |= {f"m_{key}": value for key, value in _message_row(record).items() if key != "seq"}
    return record, parameters


def _insert_one(
    connection: Connection, statement: Executable, record: MessageRecord, parameters: dict[str, Any]
) -> MessageRecord:
    seq: int | None = connection.execute(statement, parameters).scalar_one_or_none()
    if seq is None:
        raise ConversationNotFound(record.conversation_id)
    return dataclasses.replace(record, seq=seq)


def start_turn_postgres(
    connection: Connection,
    user_id: str,
    conversation_id: str,
    message: NewMessage,
    now: datetime,
    *,
    title: str | None,
) -> tuple[list[MessageRecord], MessageRecord]:
    """``start_turn`` as two statements, each atomic on its own (PostgreSQL only). Raises: ConversationNotFound.

    The history is read by a second statement on purpose: under READ COMMITTED it takes a fresh snapshot, so it
    sees every message whose ``seq`` was reserved before ours (the reserving UPDATE waited for their commits).
    """
    record, parameters = _one_message(user_id, conversation_id, message, now)
    parameters["first_title"] = title if title is not None else DEFAULT_TITLE
    record = _insert_one(connection, _PG_APPEND_ONE_AND_NAME, record, parameters)
    rows = connection.execute(_HISTORY, {"conversation": conversation_id, "before": record.seq})
    return [_message(row) for row in rows], record


def start_turn(
    connection: Connection,
    user_id: str,
    conversation_id: str,
    message: NewMessage,
    now: datetime,
    *,
    title: str | None,
) -> tuple[list[MessageRecord], MessageRecord]:
    """Three statements; run in a transaction. Raises: ConversationNotFound."""
    seq = _reserve_seq(connection, user_id, conversation_id, 1, now, title=title)
    rows = connection.execute(_HISTORY, {"conversation": conversation_id, "before": seq})
    history = [_message(row) for row in rows]
    record = _new_message_record(message, conversation_id, seq=seq, created_at=now)
    connection.execute(_INSERT_MESSAGES, _message_row(record))
    return history, record


def _reserve_seq(
    connection: Connection, user_id: str, conversation_id: str, count: int, now: datetime, *, title: str | None
) -> int:
    """The first of ``count`` new ``seq`` numbers. Raises: ConversationNotFound."""
    parameters: dict[str, Any] = {"conversation": conversation_id, "owner": user_id, "count": count, "now": now}
    if title is None:
        statement = _RESERVE_SEQ
    else:
        statement = _RESERVE_SEQ_AND_NAME
        parameters["first_title"] = title
    next_seq: int | None = connection.execute(statement, parameters).scalar_one_or_none()
    if next_seq is None:
        raise ConversationNotFound(conversation_id)
    return next_seq - count


# --- MCP server registrations --------------------------------------------------------------------------------------


def list_registrations(connection: Connection) -> list[ServerRegistration]:
    return [ServerRegistration(*row) for row in connection.execute(_LIST_SERVERS)]


def add_registration(connection: Connection, registration: ServerRegistration) -> bool:
    """Whether it was added (False: the id is taken)."""
    row = dataclasses.asdict(registration)
    return connection.execute(_ADD_SERVER[connection.dialect.name], row).rowcount > 0


def remove_registration(connection: Connection, server_id: str) -> bool:
    """Whether it was there."""
    return connection.execute(_DELETE_SERVER, {"server": server_id}).rowcount > 0


# --- approved MCP tool definitions ---------------------------------------------------------------------------------


def list_tool_approvals(connection: Connection) -> list[ToolApproval]:
    return [ToolApproval(*row) for row in connection.execute(_LIST_TOOL_APPROVALS)]


def add_tool_approval(connection: Connection, approval: ToolApproval) -> ToolApproval:
    """Two statements; run in a transaction. Returns the approval stored: ``approval``, or the one already there."""
    connection.execute(_ADD_TOOL_APPROVAL[connection.dialect.name], _tool_approval_row(approval))
    row = connection.execute(_GET_TOOL_APPROVAL, {"server": approval.server_id, "tool_name": approval.tool}).one()
    return ToolApproval(*row)


def set_tool_approval(connection: Connection, approval: ToolApproval) -> None:
    connection.execute(_SET_TOOL_APPROVAL[connection.dialect.name], _tool_approval_row(approval))


def _tool_approval_row(approval: ToolApproval) -> dict[str, Any]:
    row = dataclasses.asdict(approval)
    row["definition"] = dict(approval.definition)
    return row


# --- health --------------------------------------------------------------------------------------------------------


def ping(connection: Connection) -> None:
    connection.execute(_PING)


# --- rows <-> records ----------------------------------------------------------------------------------------------


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _new_message_record(message: NewMessage, conversation_id: str, *, seq: int, created_at: datetime) -> MessageRecord:
    return MessageRecord(
        id=str(uuid4()),
        conversation_id=conversation_id,
        seq=seq,
        role=message.role,
        content=safe_text(message.content),
        status=message.status,
        created_at=created_at,
        tool_calls=tuple(
            ToolCallRecord(call.id, safe_text(call.name), safe_text(call.arguments)) for call in message.tool_calls
        ),
        tool_call_id=message.tool_call_id,
        tool_name=message.tool_name,
        is_error=message.is_error,
        model=message.model,
        prompt_tokens=message.prompt_tokens,
        completion_tokens=message.completion_tokens,
        started_at=as_utc(message.started_at),
        duration_ms=message.duration_ms,
        error=safe_text(message.error) if message.error is not None else None,
    )


def _message_row(record: MessageRecord) -> dict[str, Any]:
    row = {column.key: getattr(record, column.key) for column in _MESSAGE_COLUMNS}
    row["tool_calls"] = [dataclasses.asdict(call) for call in record.tool_calls] or None
    return row


def _message(row: Sequence[Any]) -> MessageRecord:
    values = list(row)
    tool_calls: list[dict[str, str]] | None = values[7]
    values[7] = tuple(
        ToolCallRecord(id=call["id"], name=call["name"], arguments=call["arguments"]) for call in tool_calls or ()
    )
    return MessageRecord(*values)
