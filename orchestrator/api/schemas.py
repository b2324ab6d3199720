"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from mcp_types import BlobResourceContents, TextResourceContents
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from orchestrator.mcp.types import MAX_CONCURRENT_CALLS, SERVER_ID_PATTERN


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it contains a lone surrogate)") from None
    return value


CleanText = Annotated[str, AfterValidator(_storable)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConversationCreate(Strict):
    title: Annotated[CleanText, Field(min_length=1, max_length=200)] | None = None


class ConversationRename(Strict):
    title: Annotated[CleanText, Field(min_length=1, max_length=200)]


class ConversationOut(BaseModel):
    id: str
    title: str
    created_at: datetime
    updated_at: datetime


class ToolCallOut(BaseModel):
    id: str
    name: str
    arguments: str


class MessageOut(BaseModel):
    id: str
    seq: int
    role: Literal["user", "assistant", "tool"]
    content: str
    status: Literal["complete", "incomplete", "error"]
    created_at: datetime
    tool_calls: list[ToolCallOut] = []
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    started_at: datetime | None = None
    duration_ms: int | None = None
    error: str | None = None


class RunningTurnOut(BaseModel):
    """The reply being written: follow it with ``GET /api/conversations/{id}/events``."""

    id: str
    user_message_id: str
    started_at: datetime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]
    running_turn: RunningTurnOut | None = None


class ResourceRef(Strict):
    server_id: Annotated[str, Field(min_length=1, max_length=48)]
    uri: Annotated[str, Field(min_length=1, max_length=4_000)]


class MessageCreate(Strict):
    # The length limit is checked against settings in the route, so it follows MAX_MESSAGE_CHARS.
    content: Annotated[CleanText, Field(min_length=1)]
    attachments: list[ResourceRef] = Field(
        default_factory=list[ResourceRef],
        max_length=10,
        description="resources read and added to the message for the model",
    )


class ToolCallResultOut(BaseModel):
    id: str
    name: str
    arguments: str
    is_error: bool | None = None
    result: str | None = None
    duration_ms: int | None = None


class ReplyOut(BaseModel):
    """The finished reply, for clients that ask for JSON instead of a stream."""

    conversation_id: str
    message_id: str | None
    status: Literal["complete", "incomplete", "error"]
    content: str
    reason: str | None
    error_code: str | None = None
    tool_calls: list[ToolCallResultOut]
    prompt_tokens: int
    completion_tokens: int
    tool_iterations: int


class MemoryCreate(Strict):
    text: Annotated[CleanText, Field(min_length=1, max_length=2_000)]


class MemoryOut(BaseModel):
    id: str
    text: str
    source: Literal["message", "saved"] = Field(
        description="message: taken from something the user wrote in a chat; saved: saved through this API"
    )
    created_at: datetime
    conversation_id: str | None = None
    score: float | None = Field(default=None, description="similarity to the search text (searches only)")


class ServerCreate(Strict):
    id: Annotated[str, Field(pattern=SERVER_ID_PATTERN)]
    url: Annotated[CleanText, Field(max_length=2048, pattern=r"^https?://")]
    transport: Literal["streamable-http", "sse"] = "streamable-http"
    headers: dict[Annotated[str, Field(max_length=256)], Annotated[CleanText, Field(max_length=4096)]] = {}
    tool_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] | None = None
    send_user_id: bool = False
    """Send the caller's user id with every tool call (for servers that keep per-user data, like ours)."""
    use_service_token: bool = False
    """Authenticate with MCP_SERVICE_TOKEN (only for servers of this deployment: it is a shared secret)."""
    max_concurrent_calls: Annotated[int, Field(ge=1, le=MAX_CONCURRENT_CALLS)] | None = None
    """How many of its tool calls run at once (others wait their turn); none: ``MCP_MAX_CONCURRENT_CALLS``."""


class CallerOut(BaseModel):
    id: str
    name: str | None
    email: str | None
    is_admin: bool


class ServerOut(BaseModel):
    id: str
    transport: str
    source: str
    status: str
    tool_count: int
    last_error: str | None
    connected_at: datetime | None
    url: str | None
    failed_attempts: int = 0
    """Connection attempts that failed in a row; the server is retried with backoff and stays unhealthy meanwhile."""
    sign_in_required: bool = False
    """Each user signs in to this server (OAuth); ``status``, ``tool_count`` and ``last_error`` are the caller's."""
    signed_in: bool | None = None


class AuthorizationStarted(BaseModel):
    server_id: str
    authorization_url: str
    """The server's sign-in page: open it in the browser; it comes back to ``/api/oauth/callback``."""


class ToolOut(BaseModel):
    name: str
    server_id: str
    tool: str
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any] | None
    policy: Literal["run", "ask", "deny"] | None = Field(
        default=None, description="what a call of the tool by the caller does: run, ask the caller first, or deny"
    )


class ApprovedDefinitionOut(BaseModel):
    definition_hash: str
    definition: dict[str, Any]
    approved_by: str
    approved_at: datetime


class CurrentDefinitionOut(BaseModel):
    definition_hash: str
    definition: dict[str, Any]


class ToolChangeOut(BaseModel):
    """A tool withheld from the model because its server changed its definition since it was approved."""

    server_id: str
    tool: str
    name: str
    approved: ApprovedDefinitionOut
    current: CurrentDefinitionOut
    diff: str
    """A unified diff of the two definitions as indented JSON (non-ASCII characters escaped, so invisible ones
    show)."""


class ToolChangeApprove(Strict):
    definition_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    """The ``current.definition_hash`` the admin reviewed; if the tool has changed since, the approval is refused."""


class ToolApprovalOut(BaseModel):
    server_id: str
    tool: str
    definition_hash: str
    approved_by: str
    approved_at: datetime


class ErrorOut(BaseModel):
    detail: str
    code: str


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route: each of ``status_codes`` answers with an ``ErrorOut``."""
    return {status_code: {"model": ErrorOut} for status_code in status_codes}


class ResourceOut(BaseModel):
    server_id: str
    name: str
    uri: str | None = Field(default=None, description="set for a resource")
    uri_template: str | None = Field(default=None, description="set for a resource template (RFC 6570)")
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    size: int | None = None
    updated_at: datetime | None = Field(default=None, description="when the server last said it changed")


class ResourceRead(BaseModel):
    uri: str
    mime_type: str | None = None
    text: str | None = None
    blob: str | None = Field(default=None, description="base64, for binary contents")

    @classmethod
    def of(cls, contents: TextResourceContents | BlobResourceContents) -> ResourceRead:
        if isinstance(contents, TextResourceContents):
            return cls(uri=str(contents.uri), mime_type=contents.mime_type, text=contents.text)
        return cls(uri=str(contents.uri), mime_type=contents.mime_type, blob=contents.blob)


class ResourceContentsOut(BaseModel):
    server_id: str
    uri: str
    contents: list[ResourceRead]


class ResourceSubscription(ResourceRef):
    pass


class PromptArgumentOut(BaseModel):
    name: str
    description: str | None = None
    required: bool = False


class PromptOut(BaseModel):
    server_id: str
    name: str
    title: str | None = None
    description: str | None = None
    arguments: list[PromptArgumentOut]


class PromptGet(Strict):
    server_id: Annotated[str, Field(min_length=1, max_length=48)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    arguments: dict[str, Annotated[str, Field(max_length=32_000)]] = Field(default_factory=dict, max_length=50)


class PromptMessageOut(BaseModel):
    role: str
    text: str


class PromptRendered(BaseModel):
    server_id: str
    name: str
    description: str | None = None
    messages: list[PromptMessageOut]


class InteractionOut(BaseModel):
    id: str
    kind: Literal["elicitation", "sampling", "authorization"]
    details: dict[str, Any]


class InteractionAnswer(Strict):
    action: Literal["accept", "decline", "cancel"]
    content: dict[str, str | int | float | bool | list[str]] | None = Field(default=None, max_length=100)
