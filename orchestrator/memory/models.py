"""SQLAlchemy tables of the conversation store.

The migrations in ``orchestrator/migrations`` create these tables; a test checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from orchestrator.memory.types import MessageStatus, Role

# Deterministic constraint names, so later migrations can refer to them (and SQLite batch mode can rebuild tables).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 36  # a UUID in text form
USER_ID_LENGTH = 255  # a JWT ``sub``


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are stored as naive UTC and made aware
    again on the way out. A naive value passed in is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value if dialect.name == "sqlite" else value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(USER_ID_LENGTH), primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_user_id_updated_at", "user_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The ``seq`` the next appended message gets; bumped atomically so concurrent appends never share a number.
    next_seq: Mapped[int] = mapped_column(Integer, server_default="1")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        CheckConstraint("role IN ('user', 'assistant', 'tool')", name="role"),
        CheckConstraint("status IN ('complete', 'incomplete', 'error')", name="status"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[Role] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[MessageStatus] = mapped_column(String(16))
    # [{"id": ..., "name": ..., "arguments": "<raw JSON text>"}]; NULL when the message asked for no tools.
    tool_calls: Mapped[list[dict[str, str]] | None] = mapped_column(JSON(none_as_null=True))
    tool_call_id: Mapped[str | None] = mapped_column(String(255))
    tool_name: Mapped[str | None] = mapped_column(String(255))
    is_error: Mapped[bool] = mapped_column(Boolean)
    model: Mapped[str | None] = mapped_column(String(255))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class McpServer(Base):
    """An HTTP MCP server registered at run time through the admin API."""

    __tablename__ = "mcp_servers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    transport: Mapped[Literal["streamable-http", "sse"]] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, str]] = mapped_column(JSON(none_as_null=True))
    tool_timeout_seconds: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str | None] = mapped_column(String(USER_ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    send_user_id: Mapped[bool] = mapped_column(Boolean, server_default=false())
    use_service_token: Mapped[bool] = mapped_column(Boolean, server_default=false())
    max_concurrent_calls: Mapped[int | None] = mapped_column(Integer)


class ApprovedTool(Base):
    """The approved definition of an MCP tool; a server's later change to it is withheld until approved again."""

    __tablename__ = "tool_approvals"

    server_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tool: Mapped[str] = mapped_column(Text, primary_key=True)
    definition_hash: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON(none_as_null=True))
    approved_by: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OAuthGrant(Base):
    """What a user granted the assistant on an OAuth-protected MCP server, per authorization server (issuer).

    ``sealed`` holds the secrets (access token, refresh token, client secret), encrypted by the MCP layer; the other
    columns are what refreshing and revoking need to know, and are not secret.
    """

    __tablename__ = "mcp_oauth_grants"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    server_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer: Mapped[str] = mapped_column(Text, primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scope: Mapped[str | None] = mapped_column(Text)
    token_endpoint: Mapped[str] = mapped_column(Text)
    revocation_endpoint: Mapped[str | None] = mapped_column(Text)
    resource: Mapped[str | None] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(Text)
    token_endpoint_auth_method: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OAuthClient(Base):
    """The assistant's client registration with an MCP server's authorization server, shared by every user."""

    __tablename__ = "mcp_oauth_clients"

    server_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer: Mapped[str | None] = mapped_column(Text)
    sealed: Mapped[str] = mapped_column(Text)  # the registration (client id, secret, metadata), encrypted
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TokenUsage(Base):
    """Tokens a user spent per UTC day, conversation and model; kept when the conversation is deleted.

    One row per (user, day, conversation, model), incremented after every model call: daily quotas and the usage
    report read a handful of rows, never the messages.
    """

    __tablename__ = "token_usage"
    __table_args__ = (Index("ix_token_usage_day", "day"),)

    user_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    model: Mapped[str] = mapped_column(String(255), primary_key=True)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    requests: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """A user's key for ``/v1`` and ``/mcp``: only the SHA-256 of the secret is kept, and a prefix to recognise it."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_prefix", "prefix"), Index("ix_api_keys_user_id", "user_id"))

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(String(32))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ToolCallApproval(Base):
    """A tool call waiting for (or given) the user's decision; one per call (conversation, tool call id)."""

    __tablename__ = "tool_call_approvals"
    __table_args__ = (
        UniqueConstraint("conversation_id", "tool_call_id"),
        CheckConstraint("status IN ('pending', 'approved', 'denied', 'expired')", name="status"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    tool_call_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    server_id: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(Text)
    arguments: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str | None] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(String(USER_ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ToolCallGrant(Base):
    """A user's standing approval of a tool: in one conversation, or in all of them (``conversation_id`` '')."""

    __tablename__ = "tool_call_grants"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    server_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tool: Mapped[str] = mapped_column(Text, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ToolPolicyRule(Base):
    """An admin's tool policy override; ``tool`` and ``role`` '' mean every tool and everyone."""

    __tablename__ = "tool_policies"
    __table_args__ = (CheckConstraint("policy IN ('run', 'ask', 'deny')", name="policy"),)

    server_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tool: Mapped[str] = mapped_column(Text, primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    policy: Mapped[str] = mapped_column(String(8))
    updated_by: Mapped[str | None] = mapped_column(String(USER_ID_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ToolCallAudit(Base):
    """Every decision on a tool call, the user's and the automatic ones; kept when the conversation is deleted."""

    __tablename__ = "tool_call_audit"
    __table_args__ = (
        Index("ix_tool_call_audit_created_at", "created_at"),
        Index("ix_tool_call_audit_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    conversation_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    tool_call_id: Mapped[str] = mapped_column(String(255))
    approval_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    server_id: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(Text)
    arguments: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(String(USER_ID_LENGTH))


class Turn(Base):
    """One assistant reply being written: which replica runs it, when it last showed it was alive, how it ended.

    A turn still ``running`` whose ``heartbeat_at`` is stale was left behind by a replica that died; another one
    takes it over (``attempts`` counts the runs) and resumes it from the stored messages.
    """

    __tablename__ = "turns"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'complete', 'incomplete', 'error', 'failed')", name="status"),
        Index("ix_turns_conversation_id_created_at", "conversation_id", "created_at"),
        Index("ix_turns_status_heartbeat_at", "status", "heartbeat_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    user_message_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
