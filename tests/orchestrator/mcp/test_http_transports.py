"""Servers over streamable HTTP and the legacy SSE transport."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.errors import ToolCallFailed, ToolTimeout
from orchestrator.mcp.registry import McpRegistry
from orchestrator.mcp.types import ServerConfig
from tests.fakes.mcp_http import HttpTestServer, HttpTransport, running_http_server
from tests.orchestrator.mcp.helpers import FAST_BACKOFF, Changes


@pytest.fixture(params=["streamable-http", "sse"])
def http_server(
    request: pytest.FixtureRequest, streamable_http_server: HttpTestServer, sse_server: HttpTestServer
) -> HttpTestServer:
    return streamable_http_server if request.param == "streamable-http" else sse_server


def http_config(
    server: HttpTestServer, *, tool_timeout_seconds: float = 60.0, send_user_id: bool = False
) -> ServerConfig:
    return ServerConfig(
        id="web",
        transport=server.transport,
        url=server.url,
        tool_timeout_seconds=tool_timeout_seconds,
        send_user_id=send_user_id,
    )


async def test_tools_over_http_are_listed_and_called(http_server: HttpTestServer) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with McpRegistry([http_config(http_server, send_user_id=True)], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        names = {spec.name for spec in registry.tools()}
        answered = await registry.call_tool("web__name", {})
        user = await registry.call_tool("web__whoami", {}, user_id="user-7")
        slow = await registry.call_tool("web__slow", {"seconds": 0.1}, on_progress=on_progress)

    assert len(names) == 18
    assert answered.text == f"over-{http_server.transport.removeprefix('streamable-')}"
    assert user.text == "user-7"
    assert slow.text == "finished"
    assert progress == [0, 1, 2, 3]


async def test_http_call_that_never_answers_times_out_and_is_cancelled(http_server: HttpTestServer) -> None:
    async with McpRegistry([http_config(http_server, tool_timeout_seconds=0.5)], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)
        before = int((await registry.call_tool("web__cancellations", {"at_least": 0, "wait_seconds": 0})).text)

        with pytest.raises(ToolTimeout):
            await registry.call_tool("web__hang", {})
        after = await registry.call_tool("web__cancellations", {"at_least": before + 1, "wait_seconds": 5})

    assert int(after.text) == before + 1


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_http_server_killed_mid_call_fails_fast_and_is_reconnected_when_back(transport: HttpTransport) -> None:
    changes = Changes()
    async with running_http_server(transport, name="first") as server:
        config = ServerConfig(id="web", transport=transport, url=server.url, tool_timeout_seconds=30)
        async with McpRegistry([config], on_change=changes, **FAST_BACKOFF) as registry:
            assert await registry.wait_until_settled(20)
            running = anyio.Event()

            async def note_running(progress: float, total: float | None, message: str | None) -> None:
                running.set()

            async def kill_when_running() -> None:
                await running.wait()
                server.kill()

            # The tool timeout is 30 s: failing within 5 means the dead connection was noticed, not waited out.
            with anyio.fail_after(5):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(kill_when_running)
                    with pytest.raises(ToolCallFailed):
                        await registry.call_tool("web__slow", {"seconds": 20}, on_progress=note_running)

            await changes.until(lambda: registry.server("web").status != "healthy")
            assert registry.server("web").last_error

            async with running_http_server(transport, name="second", port=server.port):
                await changes.until(lambda: registry.server("web").status == "healthy", within=20)
                answered = await registry.call_tool("web__name", {})

    assert answered.text == "second"
