"""Records and the store protocol for durable conversations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Role = Literal["user", "assistant", "tool"]
MessageStatus = Literal["complete", "incomplete", "error"]


@dataclass(frozen=True, slots=True)
class UserIdentity:
    id: str
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool call the model asked for, as kept on its assistant message."""

    id: str
    name: str
    arguments: str  # the raw JSON text the model produced, kept verbatim


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: str
    user_id: str
    title: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewMessage:
    role: Role
    content: str = ""
    status: MessageStatus = "complete"
    tool_calls: Sequence[ToolCallRecord] = ()
    tool_call_id: str | None = None  # role == "tool": the call this result answers
    tool_name: str | None = None  # role == "tool": the exposed tool name
    is_error: bool = False
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    started_at: datetime | None = None
    duration_ms: int | None = None
    error: str | None = None  # why the message is incomplete or an error, for people (never sent to the model)


@dataclass(frozen=True, slots=True)
class NewTurn:
    """The turn a user's message starts (see ``orchestrator.memory.turns``): its id and the replica running it."""

    id: str
    owner: str


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: str
    conversation_id: str
    seq: int
    role: Role
    content: str
    status: MessageStatus
    created_at: datetime
    tool_calls: Sequence[ToolCallRecord] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    started_at: datetime | None = None
    duration_ms: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ServerRegistration:
    """An HTTP MCP server added at run time through the admin API."""

    id: str
    transport: Literal["streamable-http", "sse"]
    url: str
    headers: Mapping[str, str] = field(default_factory=dict[str, str])
    tool_timeout_seconds: float | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    send_user_id: bool = False
    use_service_token: bool = False
    max_concurrent_calls: int | None = None


@dataclass(frozen=True, slots=True)
class ToolApproval:
    """A tool definition an admin approved (or that was trusted on first use), pinned by its hash."""

    server_id: str
    tool: str  # the server's own tool name
    definition_hash: str  # SHA-256 of the canonical JSON of ``definition``
    definition: Mapping[str, Any]  # name, description, input_schema, annotations, as the server sent them
    approved_by: str  # a user id, or "first-use"
    approved_at: datetime


class ConversationStore(Protocol):
    """Durable conversations. Every read and write is scoped to one user.

    A conversation id that does not exist and one that belongs to another user are indistinguishable:
    both raise ``ConversationNotFound``.
    """

    async def ensure_user(self, user: UserIdentity) -> None:
        """Create the user row, or refresh its name and e-mail."""
        ...

    async def create_conversation(self, user_id: str, title: str | None = None) -> ConversationRecord: ...

    async def list_conversations(
        self, user_id: str, *, limit: int = 50, offset: int = 0, title_contains: str | None = None
    ) -> list[ConversationRecord]:
        """Most recently updated first; ``title_contains`` keeps those whose title contains it (any case)."""
        ...

    async def get_conversation(self, user_id: str, conversation_id: str) -> ConversationRecord:
        """Raises: ConversationNotFound."""
        ...

    async def rename_conversation(self, user_id: str, conversation_id: str, title: str) -> ConversationRecord:
        """Raises: ConversationNotFound."""
        ...

    async def delete_conversation(self, user_id: str, conversation_id: str) -> None:
        """Delete the conversation and its messages. Raises: ConversationNotFound."""
        ...

    async def list_messages(self, user_id: str, conversation_id: str) -> list[MessageRecord]:
        """Messages in order (by ``seq``). Raises: ConversationNotFound."""
        ...

    async def append_messages(
        self, user_id: str, conversation_id: str, messages: Sequence[NewMessage], *, durable: bool = True
    ) -> list[MessageRecord]:
        """Append messages in one transaction, giving them the next ``seq`` numbers, and touch ``updated_at``.

        ``durable=False`` is for the intermediate steps of a turn: the write is visible at once and survives a
        crash of this process, but the database may acknowledge it before it reaches the disk (it gets there
        with the turn's next durable write, or within a fraction of a second).

        Raises: ConversationNotFound.
        """
        ...

    async def start_turn(
        self, user_id: str, conversation_id: str, message: NewMessage, *, title: str | None, turn: NewTurn | None = None
    ) -> tuple[list[MessageRecord], MessageRecord]:
        """Begin a chat turn: append the user's ``message`` and return (the messages before it, the stored message).

        One transaction, like ``append_messages``. When ``title`` is given and the conversation has no messages
        and still the default title, it is named ``title``. With ``turn``, the turn is stored ``running`` in the
        same transaction (see ``orchestrator.memory.turns``).

        Raises: ConversationNotFound.
        """
        ...


class ServerRegistrationStore(Protocol):
    async def list_registrations(self) -> list[ServerRegistration]: ...

    async def add_registration(self, registration: ServerRegistration) -> ServerRegistration:
        """Raises: Conflict when the id is taken."""
        ...

    async def remove_registration(self, server_id: str) -> None:
        """Raises: ServerNotFound."""
        ...


class ToolApprovalStore(Protocol):
    async def list_tool_approvals(self) -> list[ToolApproval]: ...

    async def add_tool_approval(self, approval: ToolApproval) -> ToolApproval:
        """Store ``approval`` unless its tool has one already; returns the one stored (an existing one wins)."""
        ...

    async def set_tool_approval(self, approval: ToolApproval) -> None:
        """Store ``approval``, replacing its tool's previous one."""
        ...


class HealthCheck(Protocol):
    async def ping(self) -> None:
        """Raises any error when the database does not answer."""
        ...
