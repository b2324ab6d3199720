"""A conversation that lives as long as one request: the ``ConversationStore`` of ``/v1/chat/completions`` turns.

The client sends the whole conversation with every request, so the loop's messages are kept in memory, for this
conversation and user only, and are gone when the request ends; nothing reaches the user's stored conversations.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import uuid4

from orchestrator.errors import ConversationNotFound
from orchestrator.memory.types import ConversationRecord, MessageRecord, NewMessage, NewTurn, UserIdentity


class EphemeralConversation:
    """Implements ``ConversationStore`` for one conversation of one user, in memory.

    Args:
        user_id: the only user it answers.
        conversation_id: its only conversation.
        history: the messages before the turn's, in order.
    """

    def __init__(self, user_id: str, conversation_id: str, history: Sequence[NewMessage] = ()) -> None:
        now = datetime.now(UTC)
        self._record = ConversationRecord(conversation_id, user_id, "API request", now, now)
        self._messages: list[MessageRecord] = []
        self._add(history)

    @property
    def messages(self) -> list[MessageRecord]:
        return list(self._messages)

    def _check(self, user_id: str, conversation_id: str) -> None:
        if user_id != self._record.user_id or conversation_id != self._record.id:
            raise ConversationNotFound(conversation_id)

    def _add(self, messages: Sequence[NewMessage]) -> list[MessageRecord]:
        now = datetime.now(UTC)
        added = [
            MessageRecord(
                id=str(uuid4()),
                conversation_id=self._record.id,
                seq=len(self._messages) + index + 1,
                role=message.role,
                content=message.content,
                status=message.status,
                created_at=now,
                tool_calls=message.tool_calls,
                tool_call_id=message.tool_call_id,
                tool_name=message.tool_name,
                is_error=message.is_error,
                model=message.model,
                prompt_tokens=message.prompt_tokens,
                completion_tokens=message.completion_tokens,
                started_at=message.started_at,
                duration_ms=message.duration_ms,
                error=message.error,
            )
            for index, message in enumerate(messages)
        ]
        self._messages.extend(added)
        return added

    async def ensure_user(self, user: UserIdentity) -> None:
        return None

    async def create_conversation(self, user_id: str, title: str | None = None) -> ConversationRecord:
        raise ConversationNotFound("new")  # one conversation per request, made with it

    async def list_conversations(
        self, user_id: str, *, limit: int = 50, offset: int = 0, title_contains: str | None = None
    ) -> list[ConversationRecord]:
        return [self._record] if user_id == self._record.user_id and offset == 0 and limit > 0 else []

    async def get_conversation(self, user_id: str, conversation_id: str) -> ConversationRecord:
        self._check(user_id, conversation_id)
        return self._record

    async def rename_conversation(self, user_id: str, conversation_id: str, title: str) -> ConversationRecord:
        self._check(user_id, conversation_id)
        return self._record

    async def delete_conversation(self, user_id: str, conversation_id: str) -> None:
        self._check(user_id, conversation_id)
        self._messages.clear()

    async def list_messages(self, user_id: str, conversation_id: str) -> list[MessageRecord]:
        self._check(user_id, conversation_id)
        return list(self._messages)

    async def append_messages(
        self, user_id: str, conversation_id: str, messages: Sequence[NewMessage], *, durable: bool = True
    ) -> list[MessageRecord]:
        self._check(user_id, conversation_id)
        return self._add(messages)

    async def start_turn(
        self, user_id: str, conversation_id: str, message: NewMessage, *, title: str | None, turn: NewTurn | None = None
    ) -> tuple[list[MessageRecord], MessageRecord]:
        """The request's messages and its new one; ``turn`` is not recorded (nothing to resume: the client retries)."""
        self._check(user_id, conversation_id)
        history = list(self._messages)
        [stored] = self._add([message])
        return history, stored
