"""A real MCP server that offers resources, resource templates and prompts, logs, and reports progress.

Run it as ``python -m tests.fakes.mcp_catalog_server`` (stdio). Tools: ``touch`` (announces that a resource
changed, and that the resource and prompt lists changed when asked), ``log`` (sends a log message),
``progress_for`` (reports progress every ``every`` seconds for ``seconds`` seconds, then answers), ``ask_name``
(asks the user for a form), ``open_link`` (asks the user to open a URL), ``ask_model`` (a sampling request) and
``roots`` (the client's roots).
"""

from __future__ import annotations

import base64
from typing import Annotated

import anyio
from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, ListRoots, Resolve, Sample
from mcp_types import CreateMessageResult, ListRootsResult, SamplingMessage, TextContent, ToolAnnotations
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel

README = "Welcome to the catalog server.\nIt has a readme, a logo and items."


class Person(BaseModel):
    name: str
    age: int


LOGO = base64.b64encode(b"\x89PNG\r\n\x1a\nnot really a png").decode()


def _ask_person() -> Elicit[Person]:
    return Elicit("Who are you?", Person)


def _ask_model(question: str) -> Sample:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=question))
    return Sample([message], max_tokens=50, system_prompt="Answer briefly.")


def _list_roots() -> ListRoots:
    return ListRoots()


def build_server() -> MCPServer:
    server = MCPServer("catalog")

    @server.resource("catalog://readme", name="readme", title="Read me", mime_type="text/plain")
    def readme() -> str:
        return README

    @server.resource("catalog://logo", name="logo", mime_type="image/png")
    def logo() -> bytes:
        return base64.b64decode(LOGO)

    @server.resource("catalog://items/{item_id}", name="item", description="One item by id")
    def item(item_id: str) -> str:
        return f"item {item_id}"

    @server.prompt(name="summarize", title="Summarize", description="Ask for a summary of a topic")
    def summarize(topic: str, style: str = "short") -> str:
        return f"Summarize {topic} in a {style} style."

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False))
    async def touch(uri: str, ctx: Context, lists: bool = False) -> str:
        """Announce that ``uri`` changed (and, with ``lists``, that the resource and prompt lists changed)."""
        modern = ctx.request_context.protocol_version in MODERN_PROTOCOL_VERSIONS
        await ctx.notify_resource_updated(uri)
        if not modern:
            await ctx.request_context.session.send_resource_updated(uri)
        if lists:

            @server.prompt(name="late", description="A prompt added at run time")
            def late() -> str:
                return "I came late."

            await ctx.notify_prompts_changed()
            await ctx.notify_resources_changed()
            if not modern:
                await ctx.request_context.session.send_prompt_list_changed()
                await ctx.request_context.session.send_resource_list_changed()
        return f"touched {uri}"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def log(message: str, ctx: Context, level: str = "warning") -> str:
        """Send ``message`` as a log notification."""
        # Logging is deprecated as of 2026-07-28 and still part of the revisions before it, which we speak too.
        await ctx.log(level, message)  # pyright: ignore[reportArgumentType, reportDeprecated]
        return "logged"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def progress_for(seconds: float, every: float, ctx: Context) -> str:
        """Report progress every ``every`` seconds for ``seconds`` seconds, then answer."""
        steps = max(int(seconds / every), 1)
        for step in range(steps):
            await ctx.report_progress(step, steps, f"step {step + 1} of {steps}")
            await anyio.sleep(every)
        return f"done after {steps} steps"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def ask_name(person: Annotated[ElicitationResult[Person], Resolve(_ask_person)]) -> str:
        """Ask the user for their name and age."""
        if isinstance(person, AcceptedElicitation):
            return f"hello {person.data.name}, {person.data.age}"
        return f"no answer: {person.action}"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def open_link(url: str, ctx: Context) -> str:
        """Ask the user to open ``url`` (a standalone request: servers speaking the revisions before 2026-07-28)."""
        result = await ctx.elicit_url("Please sign in there", url, "link-1")
        return f"link: {result.action}"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def ask_model(question: str, answer: Annotated[CreateMessageResult, Resolve(_ask_model)]) -> str:
        """Ask the client's model ``question`` (sampling)."""
        del question  # the resolver asked it
        content = answer.content
        return f"model says: {content.text}" if isinstance(content, TextContent) else "model says something else"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def roots(listed: Annotated[ListRootsResult, Resolve(_list_roots)]) -> str:
        """The client's roots."""
        return ", ".join(str(root.uri) for root in listed.roots)

    return server


if __name__ == "__main__":
    build_server().run("stdio")
