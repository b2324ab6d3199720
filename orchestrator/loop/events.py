"""Events a running turn emits; the API sends them as server-sent events."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

TurnStatus = Literal["complete", "incomplete", "error"]


@dataclass(frozen=True, slots=True)
class MessageStart:
    event: ClassVar[str] = "message_start"
    conversation_id: str
    user_message_id: str
    model: str


@dataclass(frozen=True, slots=True)
class Token:
    event: ClassVar[str] = "token"
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    event: ClassVar[str] = "tool_call_started"
    id: str
    name: str
    server_id: str | None
    tool: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallProgress:
    event: ClassVar[str] = "tool_call_progress"
    id: str
    progress: float
    total: float | None
    message: str | None
    elapsed_ms: int


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    event: ClassVar[str] = "tool_call_finished"
    id: str
    name: str
    is_error: bool
    result: str
    truncated: bool
    duration_ms: int


@dataclass(frozen=True, slots=True)
class MessageEnd:
    event: ClassVar[str] = "message_end"
    message_id: str | None
    status: TurnStatus
    content: str
    prompt_tokens: int
    completion_tokens: int
    tool_iterations: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TurnError:
    event: ClassVar[str] = "error"
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class InteractionRequested:
    """A server asks the user something during a tool call (see ``orchestrator.loop.interactions``).

    ``details`` for ``elicitation``: ``mode`` (``form`` or ``url``), ``message``, and ``requested_schema`` (form) or
    ``url`` (url). For ``sampling``: ``system_prompt``, ``messages`` (``role``, ``text``) and ``max_tokens``. For
    ``authorization`` (a protected server's sign-in): ``mode`` (``authorization``), ``message`` and ``url``, the
    sign-in page; it ends by itself once the user has signed in.
    """

    event: ClassVar[str] = "interaction_requested"
    id: str
    kind: str
    server_id: str
    tool_call_id: str
    details: dict[str, Any]
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class InteractionEnded:
    event: ClassVar[str] = "interaction_ended"
    id: str
    outcome: str  # accept, decline, cancel, timeout, refused, or failed (a sign-in that did not work)


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    """A tool call waits for the user's decision (see ``orchestrator.approvals``); ``arguments`` is the full JSON."""

    event: ClassVar[str] = "approval_requested"
    id: str
    tool_call_id: str
    name: str
    server_id: str
    tool: str
    arguments: str
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class ApprovalEnded:
    event: ClassVar[str] = "approval_ended"
    id: str
    tool_call_id: str
    decision: str  # once, conversation, always, deny, or timeout


TurnEvent = (
    MessageStart
    | Token
    | ToolCallStarted
    | ToolCallProgress
    | ToolCallFinished
    | MessageEnd
    | TurnError
    | InteractionRequested
    | InteractionEnded
    | ApprovalRequested
    | ApprovalEnded
)


def event_payload(event: TurnEvent) -> dict[str, Any]:
    return asdict(event)


_EVENT_TYPES: dict[str, type[TurnEvent]] = {
    kind.event: kind
    for kind in (
        MessageStart,
        Token,
        ToolCallStarted,
        ToolCallProgress,
        ToolCallFinished,
        MessageEnd,
        TurnError,
        InteractionRequested,
        InteractionEnded,
    )
}


def event_from_payload(name: str, payload: dict[str, Any]) -> TurnEvent:
    """The event ``event_payload`` described (for events kept outside the process, as JSON).

    Raises:
        ValueError: ``name`` is no event's name, or ``payload`` does not fit it.
    """
    kind = _EVENT_TYPES.get(name)
    if kind is None:
        raise ValueError(f"unknown event {name!r}")
    try:
        return kind(**payload)
    except TypeError as exc:
        raise ValueError(f"a {name} event with the wrong fields: {exc}") from None
