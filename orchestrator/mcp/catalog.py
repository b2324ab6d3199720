"""Listing what a server offers besides tools: its resources, resource templates and prompts.

Each list is fetched only when the server declares the capability, page by page up to a bound, so a server whose
cursor never ends cannot keep us listing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

import anyio
from mcp.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import Prompt, Resource, ResourceTemplate
from pydantic import ValidationError

from orchestrator.mcp.types import Catalog, PromptArgumentSpec, PromptSpec, ResourceSpec

logger = logging.getLogger(__name__)

PAGE_LIMIT: Final = 100
_Item = TypeVar("_Item")


async def list_catalog(client: Client, server_id: str, timeout_seconds: float) -> Catalog:
    """The server's resources, templates and prompts (empty for the capabilities it does not declare)."""
    capabilities = client.server_capabilities
    resources: list[Resource] = []
    templates: list[ResourceTemplate] = []
    prompts: list[Prompt] = []
    with anyio.fail_after(timeout_seconds):
        if capabilities.resources is not None:
            resources = await _optional(_all_pages(lambda cursor: _resources(client, cursor), server_id, "resources"))
            templates = await _optional(
                _all_pages(lambda cursor: _templates(client, cursor), server_id, "resource templates")
            )
        if capabilities.prompts is not None:
            prompts = await _optional(_all_pages(lambda cursor: _prompts(client, cursor), server_id, "prompts"))
    return Catalog(
        resources=tuple(_resource_spec(server_id, resource) for resource in resources),
        resource_templates=tuple(_template_spec(server_id, template) for template in templates),
        prompts=tuple(_prompt_spec(server_id, prompt) for prompt in prompts),
    )


async def _optional(listing: Awaitable[list[_Item]]) -> list[_Item]:
    """A list the server answers wrongly is left empty: its tools must still work."""
    try:
        return await listing
    except (MCPError, ValidationError) as exc:
        logger.warning("MCP server answered a listing with an error; it stays empty: %s", exc)
        return []


async def _resources(client: Client, cursor: str | None) -> tuple[Sequence[Resource], str | None]:
    page = await client.list_resources(cursor=cursor)
    return page.resources, page.next_cursor


async def _templates(client: Client, cursor: str | None) -> tuple[Sequence[ResourceTemplate], str | None]:
    page = await client.list_resource_templates(cursor=cursor)
    return page.resource_templates, page.next_cursor


async def _prompts(client: Client, cursor: str | None) -> tuple[Sequence[Prompt], str | None]:
    page = await client.list_prompts(cursor=cursor)
    return page.prompts, page.next_cursor


async def _all_pages(
    fetch: Callable[[str | None], Awaitable[tuple[Sequence[_Item], str | None]]], server_id: str, what: str
) -> list[_Item]:
    items: list[_Item] = []
    cursor: str | None = None
    for _ in range(PAGE_LIMIT):
        page, cursor = await fetch(cursor)
        items.extend(page)
        if cursor is None:
            return items
    logger.warning("MCP server %s: stopped listing %s after %d pages", server_id, what, PAGE_LIMIT)
    return items


def _resource_spec(server_id: str, resource: Resource) -> ResourceSpec:
    return ResourceSpec(
        server_id=server_id,
        name=resource.name,
        uri=str(resource.uri),
        title=resource.title,
        description=resource.description,
        mime_type=resource.mime_type,
        size=resource.size,
    )


def _template_spec(server_id: str, template: ResourceTemplate) -> ResourceSpec:
    return ResourceSpec(
        server_id=server_id,
        name=template.name,
        uri_template=template.uri_template,
        title=template.title,
        description=template.description,
        mime_type=template.mime_type,
    )


def _prompt_spec(server_id: str, prompt: Prompt) -> PromptSpec:
    arguments = tuple(
        PromptArgumentSpec(name=argument.name, description=argument.description, required=bool(argument.required))
        for argument in prompt.arguments or ()
    )
    return PromptSpec(
        server_id=server_id, name=prompt.name, title=prompt.title, description=prompt.description, arguments=arguments
    )
