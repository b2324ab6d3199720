"""Searching one user's conversations by title and by the text of their messages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, exists, or_, select
from sqlalchemy.engine import Connection

from orchestrator.memory.db import Database
from orchestrator.memory.models import Conversation, Message
from orchestrator.memory.types import ConversationRecord

SNIPPET_CHARS = 200


@dataclass(frozen=True, slots=True)
class SearchHit:
    conversation: ConversationRecord
    snippet: str | None
    """Around the first message that contains the text; ``None`` when only the title does."""


def _snippet(content: str, query: str) -> str:
    at = max(0, content.lower().find(query.lower()))
    start = max(0, at - SNIPPET_CHARS // 2)
    text = content[start : start + SNIPPET_CHARS]
    return ("…" if start else "") + text + ("…" if start + SNIPPET_CHARS < len(content) else "")


class ConversationSearch:
    """Case-insensitive substring search over one user's conversations (titles and message text)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def search(self, user_id: str, query: str, *, limit: int = 20) -> list[SearchHit]:
        """Most recently updated first."""

        def run(connection: Connection) -> list[SearchHit]:
            matching_message = exists().where(
                Message.conversation_id == Conversation.id, Message.content.icontains(query, autoescape=True)
            )
            rows = connection.execute(
                select(
                    Conversation.id,
                    Conversation.user_id,
                    Conversation.title,
                    Conversation.created_at,
                    Conversation.updated_at,
                )
                .where(
                    Conversation.user_id == bindparam("owner"),
                    or_(Conversation.title.icontains(query, autoescape=True), matching_message),
                )
                .order_by(Conversation.updated_at.desc(), Conversation.id)
                .limit(limit),
                {"owner": user_id},
            ).all()
            records = [ConversationRecord(*row) for row in rows]
            snippets: dict[str, str] = {}
            if records:
                messages = connection.execute(
                    select(Message.conversation_id, Message.content)
                    .where(
                        Message.conversation_id.in_([record.id for record in records]),
                        Message.role.in_(["user", "assistant"]),
                        Message.content.icontains(query, autoescape=True),
                    )
                    .order_by(Message.conversation_id, Message.seq)
                )
                for conversation_id, content in messages:
                    snippets.setdefault(conversation_id, _snippet(content, query))
            return [SearchHit(record, snippets.get(record.id)) for record in records]

        return await self._database.run(run)
