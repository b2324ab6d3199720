"""Questions from MCP servers that wait for a user's answer: elicitation forms and links, sampling approvals, and
sign-ins to protected servers.

A running tool call's server asks; the turn shows the question in the conversation (an ``interaction_requested``
event) and waits here, bounded by a timeout, until the user answers through the API.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import Conflict, NotFound

InteractionKind = Literal["elicitation", "sampling", "authorization"]
Action = Literal["accept", "decline", "cancel"]


class InteractionNotFound(NotFound):
    def __init__(self, interaction_id: str) -> None:
        self.interaction_id = interaction_id
        super().__init__(f"no pending question {interaction_id!r} in this conversation")


@dataclass(frozen=True, slots=True)
class Answer:
    action: Action
    content: Mapping[str, Any] | None = None


@dataclass(eq=False)
class Pending:
    """One question, waiting for its answer."""

    id: str
    user_id: str
    conversation_id: str
    kind: InteractionKind
    details: Mapping[str, Any]
    answer: Answer | None = None
    _answered: anyio.Event = field(default_factory=anyio.Event)

    def resolve(self, answer: Answer) -> None:
        self.answer = answer
        self._answered.set()

    async def wait(self, timeout_seconds: float) -> Answer | None:
        """The user's answer, or ``None`` when none came in time."""
        with anyio.move_on_after(timeout_seconds):
            await self._answered.wait()
        return self.answer


class PendingInteractions:
    """Every question waiting for an answer, in this process; a user sees and answers only their own."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}

    @asynccontextmanager
    async def asking(
        self, user_id: str, conversation_id: str, kind: InteractionKind, details: Mapping[str, Any]
    ) -> AsyncGenerator[Pending]:
        """A new question, answerable while the block runs."""
        pending = Pending(uuid.uuid4().hex, user_id, conversation_id, kind, details)
        self._pending[pending.id] = pending
        try:
            yield pending
        finally:
            self._pending.pop(pending.id, None)

    def answer(self, user_id: str, conversation_id: str, interaction_id: str, answer: Answer) -> Pending:
        """Raises: InteractionNotFound (also for another user's question), Conflict (already answered)."""
        pending = self._pending.get(interaction_id)
        if pending is None or pending.user_id != user_id or pending.conversation_id != conversation_id:
            raise InteractionNotFound(interaction_id[:100])
        if pending.answer is not None:
            raise Conflict("this question was already answered")
        pending.resolve(answer)
        return pending

    def waiting(self, user_id: str, conversation_id: str) -> list[Pending]:
        return [
            pending
            for pending in self._pending.values()
            if pending.user_id == user_id and pending.conversation_id == conversation_id and pending.answer is None
        ]


class _FieldSchema(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str | None = None
    enum: list[Any] | None = None


class _FormSchema(BaseModel):
    """The flat object schema elicitation forms may use: primitive properties, some required."""

    model_config = ConfigDict(extra="allow")
    properties: dict[str, _FieldSchema] = {}
    required: list[str] = []


_KINDS: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "number": (int, float),
    "integer": int,
    "boolean": bool,
    "array": list,
}


def form_problem(schema: object, content: Mapping[str, Any] | None) -> str | None:
    """What is wrong with a form answer for ``schema``; ``None`` when it fits (or the schema cannot be read)."""
    try:
        form = _FormSchema.model_validate(schema)
    except ValidationError:
        return None
    values = content or {}
    missing = [name for name in form.required if name not in values]
    if missing:
        return f"missing required field(s): {', '.join(missing)}"
    for name, value in values.items():
        field_schema = form.properties.get(name)
        if field_schema is None:
            return f"unknown field {name!r}"
        expected = _KINDS.get(field_schema.type or "")
        wrong_bool = isinstance(value, bool) and field_schema.type != "boolean"
        if expected is not None and (not isinstance(value, expected) or wrong_bool):
            return f"field {name!r} must be a {field_schema.type}"
        if field_schema.enum is not None and value not in field_schema.enum:
            return f"field {name!r} must be one of {', '.join(map(str, field_schema.enum))}"
    return None
