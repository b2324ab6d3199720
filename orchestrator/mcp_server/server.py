"""The assistant as an MCP server: its own tools (``tools``) and the tools of the servers it may share.

Shared tools are those of servers whose entry says ``"share": true``. They keep their ``<server>__<tool>`` names
and are called through the registry as the key's user, exactly as the assistant's own turns call them (the
user's own sign-in to a protected server, the user's id to servers trusted with it).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
    ToolAnnotations,
)
from starlette.requests import Request

from orchestrator import __version__
from orchestrator.auth import Caller
from orchestrator.errors import OrchestratorError, ServerNotFound, ToolError
from orchestrator.lifespan import AppState
from orchestrator.loop.gate import GatedCall
from orchestrator.mcp.types import ToolSpec
from orchestrator.mcp_server.tools import OWN_TOOLS, OwnTool, as_text

logger = logging.getLogger(__name__)

CALLER_SCOPE_KEY = "mcp_assistant.caller"
STATE_SCOPE_KEY = "mcp_assistant.state"
INSTRUCTIONS = (
    "The MCP Assistant of the user this API key belongs to. list_conversations, search_conversations and "
    "get_conversation read the user's conversations with the assistant; ask sends it a message and returns its "
    "reply. Tools named <server>__<tool> are the tools of MCP servers the assistant shares."
)


def _request_parts(ctx: ServerRequestContext[Any]) -> tuple[AppState, Caller]:
    """Who is calling: the HTTP endpoint authenticated the request and put the caller in its scope."""
    request = ctx.request
    if isinstance(request, Request):
        caller = request.scope.get(CALLER_SCOPE_KEY)
        state = request.scope.get(STATE_SCOPE_KEY)
        if isinstance(caller, Caller) and isinstance(state, AppState):
            return state, caller
    raise MCPError(INVALID_PARAMS, "this request was not authenticated")  # never served without the endpoint


def _own(tool: OwnTool) -> Tool:
    return Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=tool.input_schema,
        annotations=ToolAnnotations(read_only_hint=tool.read_only, open_world_hint=False),
    )


def _shared(spec: ToolSpec) -> Tool:
    schema = dict(spec.input_schema) if spec.input_schema else {"type": "object"}
    return Tool(name=spec.name, description=spec.description, input_schema=schema)


def _shareable(state: AppState, spec: ToolSpec) -> bool:
    try:
        return state.registry.config(spec.server_id).share
    except ServerNotFound:
        return False


async def shared_tools(state: AppState, user_id: str) -> list[ToolSpec]:
    """The tools of shared servers, as ``user_id`` sees them."""
    return [spec for spec in await state.registry.tools_for(user_id) if _shareable(state, spec)]


def _result(text: str, *, is_error: bool = False, structured: Any = None) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=text)], is_error=is_error, structured_content=structured)


async def list_tools(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListToolsResult:
    state, caller = _request_parts(ctx)
    shared = await shared_tools(state, caller.user.id)
    return ListToolsResult(tools=[*(_own(tool) for tool in OWN_TOOLS), *(_shared(spec) for spec in shared)])


async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
    state, caller = _request_parts(ctx)
    arguments: Mapping[str, Any] = params.arguments or {}
    own = next((tool for tool in OWN_TOOLS if tool.name == params.name), None)
    try:
        if own is not None:
            value = await own.handler(state, caller, arguments)
            return _result(as_text(value), structured=value)
        spec = next((spec for spec in await shared_tools(state, caller.user.id) if spec.name == params.name), None)
        if spec is None:
            return _result(f"unknown tool {params.name!r}", is_error=True)
        if state.approvals is not None:
            refused = await state.approvals.admit_unattended(
                GatedCall(caller.user.id, "", uuid.uuid4().hex, spec.name, json.dumps(arguments), spec)
            )
            if refused is not None:
                return _result(refused, is_error=True)
        output = await state.registry.call_tool(params.name, arguments, user_id=caller.user.id)
        return _result(output.text, is_error=output.is_error)
    except (ToolError, OrchestratorError) as exc:  # a failed call is a result the client's model can read
        return _result(f"Error: {exc}", is_error=True)


def create_server() -> Server[Any]:
    return Server(
        "mcp-assistant",
        version=__version__,
        title="MCP Assistant",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
