"""What MCP servers offer besides tools: resources (list, read, subscribe) and prompts (list, get)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from orchestrator.api.schemas import (
    PromptArgumentOut,
    PromptGet,
    PromptMessageOut,
    PromptOut,
    PromptRendered,
    ResourceContentsOut,
    ResourceOut,
    ResourceRead,
    ResourceSubscription,
    error_responses,
)
from orchestrator.deps import CurrentCaller, State
from orchestrator.mcp.contents import prompt_messages
from orchestrator.mcp.types import PromptSpec, ResourceSpec

router = APIRouter(prefix="/api", tags=["resources and prompts"])
_errors = error_responses(401, 403, 404, 422, 502, 503)


@router.get("/resources", responses=_errors)
async def list_resources(state: State, caller: CurrentCaller) -> list[ResourceOut]:
    """Every connected server's resources and resource templates (of protected servers: the caller's own)."""
    user_id = caller.user.id
    return [_resource_out(state, spec, user_id) for spec in state.registry.resources(user_id)]


@router.get("/resources/read", responses=_errors)
async def read_resource(
    state: State,
    caller: CurrentCaller,
    server_id: Annotated[str, Query(min_length=1, max_length=48)],
    uri: Annotated[str, Query(min_length=1, max_length=4_000)],
) -> ResourceContentsOut:
    """Read a resource by URI: a listed one, one made from a template, or a link a tool returned."""
    result = await state.registry.read_resource(server_id, uri, caller.user.id)
    return ResourceContentsOut(
        server_id=server_id, uri=uri, contents=[ResourceRead.of(contents) for contents in result.contents]
    )


@router.post("/resources/subscriptions", status_code=status.HTTP_204_NO_CONTENT, responses=_errors)
async def subscribe_resource(state: State, caller: CurrentCaller, body: ResourceSubscription) -> None:
    """Follow a resource: its ``updated_at`` in ``GET /api/resources`` changes when the server says it changed."""
    await state.registry.subscribe_resource(body.server_id, body.uri, caller.user.id)


@router.get("/prompts", responses=_errors)
async def list_prompts(state: State, caller: CurrentCaller) -> list[PromptOut]:
    return [_prompt_out(spec) for spec in state.registry.prompts(caller.user.id)]


@router.post("/prompts/get", responses=_errors)
async def get_prompt(state: State, caller: CurrentCaller, body: PromptGet) -> PromptRendered:
    """Render a server's prompt with arguments; the messages can be sent as the user's next message."""
    result = await state.registry.get_prompt(body.server_id, body.name, body.arguments, caller.user.id)
    return PromptRendered(
        server_id=body.server_id,
        name=body.name,
        description=result.description,
        messages=[PromptMessageOut(role=role, text=text) for role, text in prompt_messages(result)],
    )


def _resource_out(state: State, spec: ResourceSpec, user_id: str) -> ResourceOut:
    updated = state.registry.resource_updates(spec.server_id, user_id).get(spec.uri) if spec.uri else None
    return ResourceOut(
        server_id=spec.server_id,
        name=spec.name,
        uri=spec.uri,
        uri_template=spec.uri_template,
        title=spec.title,
        description=spec.description,
        mime_type=spec.mime_type,
        size=spec.size,
        updated_at=updated,
    )


def _prompt_out(spec: PromptSpec) -> PromptOut:
    return PromptOut(
        server_id=spec.server_id,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        arguments=[
            PromptArgumentOut(name=a.name, description=a.description, required=a.required) for a in spec.arguments
        ],
    )
