"""Value types shared by the MCP layer and its users (the loop, the API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from mcp_types import CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult, ErrorData
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

Transport = Literal["stdio", "streamable-http", "sse"]
ServerStatus = Literal["connecting", "healthy", "unhealthy", "stopped", "auth_required"]
ServerSource = Literal["config", "discovery", "runtime"]

USER_META_KEY = "mcp-assistant/user-id"
"""The ``_meta`` key that carries the calling user's id on every tool call."""

SERVER_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,47}$"
MAX_CONCURRENT_CALLS = 256
"""The highest limit of tool calls at once a server may be given."""

ToolPolicy = Literal["run", "ask", "deny"]
"""What happens when the model calls a tool: it runs, the user is asked first, or it is refused."""


class OAuthClientConfig(BaseModel):
    """A server that signs each user in with OAuth 2.1, and the assistant's credentials there if pre-registered.

    Without ``client_id`` the assistant registers itself with the server's authorization server (dynamic client
    registration, or its client ID metadata document where the authorization server accepts one).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str | None = Field(default=None, min_length=1)
    client_secret: SecretStr | None = None
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post", "none"] | None = None
    scope: str | None = None  # asked for besides the scopes the server names


class ToolPolicyConfig(BaseModel):
    """A servers file's ``toolPolicy``: the policy of the server's tools, and of some tools by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: ToolPolicy | None = None  # None: each tool's own annotations decide
    tools: Mapping[str, ToolPolicy] = Field(default_factory=dict)


class ServerConfig(BaseModel):
    """One MCP server, as written in an ``mcpServers`` entry or registered at run time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=SERVER_ID_PATTERN)
    transport: Transport
    # stdio
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    # HTTP (streamable-http or legacy sse)
    url: str | None = None
    headers: Mapping[str, str] = Field(default_factory=dict)
    # behaviour
    tool_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    connect_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    enabled: bool = True
    source: ServerSource = "config"
    # Trust: what the orchestrator shares with this server. Off unless the server is known to be ours.
    send_user_id: bool = False  # the caller's user id in every tool call's _meta (USER_META_KEY)
    use_service_token: bool = False  # Authorization: Bearer $MCP_SERVICE_TOKEN, unless headers say otherwise
    share: bool = False  # its tools are offered to other MCP clients by the assistant's own /mcp endpoint
    roots: tuple[str, ...] = ()  # file:// URIs offered when the server asks for roots
    # Each user signs in to the server (OAuth 2.1) and gets a connection of their own. A server that answers 401
    # without this is treated the same way, with the client registered dynamically.
    oauth: OAuthClientConfig | None = None
    # Approvals and load: the policy of its tools (over their annotations), and how many calls may run at once
    # (None: MCP_MAX_CONCURRENT_CALLS).
    tool_policy: ToolPolicyConfig | None = None
    max_concurrent_calls: int | None = Field(default=None, ge=1, le=MAX_CONCURRENT_CALLS)

    @model_validator(mode="after")
    def _check_transport_fields(self) -> ServerConfig:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError("a stdio server needs a 'command'")
            if self.url:
                raise ValueError("a stdio server takes 'command', not 'url'")
        else:
            if not self.url:
                raise ValueError(f"a {self.transport} server needs a 'url'")
            if not self.url.startswith(("http://", "https://")):
                raise ValueError("'url' must start with http:// or https://")
            if self.command:
                raise ValueError(f"a {self.transport} server takes 'url', not 'command'")
        if self.oauth is not None and self.transport == "stdio":
            raise ValueError("'oauth' is for HTTP servers; a stdio server gets its credentials in 'env'")
        return self


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as offered to the model.

    ``name`` is the exposed, OpenAI-legal ``<server_id>__<tool>`` name; ``tool`` is the server's own tool name.
    """

    name: str
    server_id: str
    tool: str
    description: str
    input_schema: Mapping[str, Any]
    annotations: Mapping[str, Any] | None = None
    hidden_characters_removed: int = 0  # invisible characters taken out of its description and schema


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """A resource a server lists (``uri``), or a template for many (``uri_template``)."""

    server_id: str
    name: str
    uri: str | None = None
    uri_template: str | None = None
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class PromptArgumentSpec:
    name: str
    description: str | None = None
    required: bool = False


@dataclass(frozen=True, slots=True)
class PromptSpec:
    server_id: str
    name: str
    title: str | None = None
    description: str | None = None
    arguments: tuple[PromptArgumentSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Catalog:
    """What a server offers besides tools, as last listed."""

    resources: tuple[ResourceSpec, ...] = ()
    resource_templates: tuple[ResourceSpec, ...] = ()
    prompts: tuple[PromptSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class ServerInfo:
    id: str
    transport: Transport
    source: ServerSource
    status: ServerStatus
    tool_count: int
    last_error: str | None
    connected_at: datetime | None
    url: str | None = None
    failed_attempts: int = 0
    """Connection attempts that failed in a row (0 once connected); the server stays ``unhealthy`` while retried."""
    # Protected servers: each user signs in; status, tools and errors above are then the asking user's own.
    sign_in_required: bool = False
    signed_in: bool | None = None


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """What a finished tool call gave back, already rendered as text for the model."""

    text: str
    is_error: bool
    truncated: bool = False
    hidden_characters_removed: int = 0  # invisible characters taken out of the text (which says so at its end)


ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]
"""``(progress, total, message)``: called for each progress notification of a running tool call."""


class ServerRequests(Protocol):
    """What a server may ask during one of its tool calls: the user (elicitation) or our model (sampling); and
    what a protected server needs first: the user's sign-in.

    The loop gives one to each tool call; it shows the request in the conversation and waits for the user.
    """

    async def elicit(self, server_id: str, params: ElicitRequestParams) -> ElicitResult: ...

    async def sample(self, server_id: str, params: CreateMessageRequestParams) -> CreateMessageResult | ErrorData: ...

    async def authorize(self, server_id: str, url: str, signed_in: Callable[[], Awaitable[None]]) -> bool:
        """Show the user the server's sign-in page (``url``) and wait until ``signed_in`` returns.

        Returns ``False`` when the user gave up or did not sign in in time.

        Raises:
            ServerAuthorizationFailed: ``signed_in`` raised it (the sign-in failed).
        """
        ...


class ToolSource(Protocol):
    """Where the loop finds tools and runs them (the MCP registry is the real one)."""

    def tools(self) -> list[ToolSpec]:
        """The tools every user is offered (those of servers that need no user's own sign-in)."""
        ...

    async def tools_for(self, user_id: str | None) -> list[ToolSpec]:
        """The tools offered to ``user_id``: everyone's, plus those of the protected servers as this user sees them."""
        ...

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any],
        *,
        user_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        requests: ServerRequests | None = None,
    ) -> ToolOutput:
        """Run the tool exposed as ``name``; ``requests`` answers what the server asks while it runs.

        ``user_id`` travels to the server in the request's ``_meta`` under ``USER_META_KEY`` so first-party
        servers can keep per-user data; it is an id, never a credential.

        A tool that runs and reports an error returns ``ToolOutput(is_error=True)``.

        Raises:
            ToolNotFound: no tool is exposed under ``name``.
            ServerUnavailable: the tool's server is not connected.
            ToolTimeout: the call did not finish within the server's tool timeout (it was cancelled on the server).
            ToolCallFailed: the connection failed during the call (for example the server process died).
        """
        ...
