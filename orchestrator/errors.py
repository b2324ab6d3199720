"""The orchestrator's error tree.

Nothing here knows about HTTP: ``orchestrator.app`` maps these errors to status codes in one place.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base class of every error the orchestrator raises on purpose."""


# --- configuration -------------------------------------------------------------------------------------------------


class ConfigurationError(OrchestratorError):
    """Settings or a servers file are invalid; ``problems`` holds one message per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


# --- conversations -------------------------------------------------------------------------------------------------


class NotFound(OrchestratorError):
    """A resource does not exist or is not visible to the caller."""

    kind: str = "resource"

    def __init__(self, resource_id: str) -> None:
        self.resource_id = resource_id
        super().__init__(f"{self.kind} {resource_id!r} not found")


class ConversationNotFound(NotFound):
    kind = "conversation"


class ServerNotFound(NotFound):
    kind = "MCP server"


class MemoryNotFound(NotFound):
    kind = "memory"


class ToolChangeNotFound(NotFound):
    """No changed definition of this tool awaits an admin's approval."""

    kind = "changed tool definition"

    def __init__(self, server_id: str, tool: str) -> None:
        self.server_id = server_id
        self.tool = tool
        super().__init__(f"{server_id}/{tool}")


class ApiKeyNotFound(NotFound):
    kind = "API key"


class Conflict(OrchestratorError):
    """The request conflicts with the current state (for example a duplicate id)."""


class TurnInProgress(Conflict):
    """A conversation already has a turn running; one turn at a time per conversation."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        super().__init__(f"conversation {conversation_id!r} already has a reply in progress")


class ToolDefinitionChanged(Conflict):
    """The definition an admin saw is no longer the tool's current one: the server changed it again."""

    def __init__(self, server_id: str, tool: str, seen_hash: str, current_hash: str) -> None:
        self.server_id = server_id
        self.tool = tool
        self.seen_hash = seen_hash
        self.current_hash = current_hash
        super().__init__(
            f"tool {tool!r} on server {server_id!r} has changed again (its definition is now {current_hash}, not "
            f"{seen_hash}): review the new definition before approving it"
        )


class TooManyApiKeys(Conflict):
    """The user has as many API keys as one user may have; revoking one makes room."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"you already have {limit} API keys (the most one user may have); revoke one first")


class InvalidInput(OrchestratorError):
    """The request is well-formed but its content is not acceptable (for example a message that is too long)."""


class InvalidParameter(InvalidInput):
    """One named parameter of a request is not acceptable (``param`` is its path, like ``messages[2].content``)."""

    def __init__(self, param: str, message: str, *, code: str | None = None) -> None:
        self.param = param
        self.code = code
        super().__init__(message)


class PermissionDenied(OrchestratorError):
    """The caller is authenticated but may not do this."""


class AuthenticationFailed(OrchestratorError):
    """No valid credentials were presented."""


# --- model ---------------------------------------------------------------------------------------------------------


class ModelError(OrchestratorError):
    """The language model could not produce a reply."""


class ModelNotFound(NotFound):
    """A client asked for a model id this server does not offer."""

    kind = "model"


class TokenQuotaExceeded(OrchestratorError):
    """The user has spent their daily token quota; it renews at 00:00 UTC."""

    def __init__(self, quota: int | None) -> None:
        self.quota = quota
        super().__init__(f"you have used your daily token quota ({quota} tokens); it renews at 00:00 UTC")


class ModelNotConfigured(ModelError):
    def __init__(self) -> None:
        super().__init__(
            "no model configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for an OpenAI-compatible endpoint "
            "other than api.openai.com), then restart the service"
        )


class ModelUnavailable(ModelError):
    """The model endpoint kept failing (rate limits, 5xx, timeouts) after bounded retries."""

    def __init__(self, reason: str, *, status_code: int | None = None, attempts: int = 1) -> None:
        self.reason = reason
        self.status_code = status_code
        self.attempts = attempts
        super().__init__(f"the model is unavailable after {attempts} attempt(s): {reason}")


class ModelRequestRejected(ModelError):
    """The model endpoint refused the request itself (4xx other than 429): retrying will not help."""

    def __init__(self, reason: str, *, status_code: int | None = None) -> None:
        self.reason = reason
        self.status_code = status_code
        super().__init__(f"the model rejected the request: {reason}")


class ModelStreamInterrupted(ModelError):
    """The model's stream ended before the reply was complete."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the model's reply was cut off: {reason}")


# --- tools ---------------------------------------------------------------------------------------------------------


class ToolError(OrchestratorError):
    """A tool call failed. The loop turns these into tool results the model can read."""


class ToolNotFound(ToolError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown tool {name!r}")


class ToolWithheld(ToolError):
    """The tool's server changed its definition since it was approved; an admin has to approve the change."""

    def __init__(self, server_id: str, tool: str) -> None:
        self.server_id = server_id
        self.tool = tool
        super().__init__(
            f"tool {tool!r} on server {server_id!r} changed its definition since it was approved; it cannot be used "
            "until an admin approves the change"
        )


class ToolArgumentsInvalid(ToolError):
    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"invalid arguments for tool {name!r}: {reason}")


class ServerUnavailable(ToolError):
    def __init__(self, server_id: str, reason: str) -> None:
        self.server_id = server_id
        self.reason = reason
        super().__init__(f"MCP server {server_id!r} is unavailable: {reason}")


class ToolTimeout(ToolError):
    def __init__(self, server_id: str, tool: str, seconds: float) -> None:
        self.server_id = server_id
        self.tool = tool
        self.seconds = seconds
        super().__init__(f"tool {tool!r} on server {server_id!r} did not answer within {seconds:g}s")


class ToolCallFailed(ToolError):
    def __init__(self, server_id: str, tool: str, reason: str) -> None:
        self.server_id = server_id
        self.tool = tool
        self.reason = reason
        super().__init__(f"tool {tool!r} on server {server_id!r} failed: {reason}")


class ServerRequestFailed(ToolError):
    """A request other than a tool call (reading a resource, getting a prompt) failed on the server."""

    def __init__(self, server_id: str, what: str, reason: str) -> None:
        self.server_id = server_id
        self.what = what
        self.reason = reason
        super().__init__(f"{what} on MCP server {server_id!r} failed: {reason}")


# --- authorization to protected MCP servers ------------------------------------------------------------------------


class ServerAuthorizationRequired(ToolError):
    """The server is protected (OAuth 2.1) and the user has not signed in to it, or its sign-in no longer works."""

    def __init__(self, server_id: str, reason: str | None = None, *, scope: str | None = None) -> None:
        self.server_id = server_id
        self.reason = reason
        self.scope = scope  # what the server asked for more of, when it refused for want of scope
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"MCP server {server_id!r} needs you to sign in to it{detail}: connect it on the servers page, or ask "
            "for something that uses it in a conversation"
        )


class ServerAuthorizationFailed(ToolError):
    """Signing in to a protected MCP server did not work: discovery, registration, consent or the token request."""

    def __init__(self, server_id: str, reason: str) -> None:
        self.server_id = server_id
        self.reason = reason
        super().__init__(f"signing in to MCP server {server_id!r} failed: {reason}")


class AuthorizationRequestNotFound(NotFound):
    """No sign-in to an MCP server is waiting under this ``state`` for this user (unknown, expired or finished)."""

    kind = "sign-in request"


# --- embeddings and vector memory ----------------------------------------------------------------------------------


class EmbeddingUnavailable(OrchestratorError):
    """Texts could not be embedded: the local model is missing or failed, or the embeddings endpoint kept failing."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"embeddings are unavailable: {reason}")


class MemoryDisabled(OrchestratorError):
    def __init__(self) -> None:
        super().__init__("long-term memory is turned off on this server (MEMORY_ENABLED=false)")


class VectorStoreUnavailable(OrchestratorError):
    """The vector store (embedded or a Qdrant server) did not answer or refused the operation."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the vector store is unavailable: {reason}")


class EventLogUnavailable(OrchestratorError):
    """A turn's events cannot be read (the shared log does not answer); the stored messages are still there."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the reply's events cannot be read right now: {reason}")
