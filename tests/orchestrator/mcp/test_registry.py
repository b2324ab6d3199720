"""The registry against real MCP servers over stdio: routing, rendering, faults and run-time changes."""

from __future__ import annotations

import logging
import sys

import anyio
import pytest

from orchestrator.errors import (
    ConfigurationError,
    Conflict,
    ServerNotFound,
    ServerUnavailable,
    ToolCallFailed,
    ToolNotFound,
    ToolTimeout,
)
from orchestrator.mcp.registry import McpRegistry
from orchestrator.mcp.types import ServerConfig
from tests.orchestrator.mcp.helpers import FAST_BACKOFF, Changes, fake_server_config


async def test_tools_are_exposed_under_server_namespaced_names() -> None:
    async with McpRegistry([fake_server_config("alpha")], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        names = [spec.name for spec in registry.tools()]

    # The test server lists four tools per page, so seeing them all means the cursor was followed.
    assert names[:3] == ["alpha__echo", "alpha__add", "alpha__name"]
    assert {"alpha__hang", "alpha__whoami", "alpha__add_tool"} <= set(names)
    assert len(names) == 18


async def test_calls_route_by_exposed_name_and_render_text() -> None:
    async with McpRegistry([fake_server_config("alpha")], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        echoed = await registry.call_tool("alpha__echo", {"text": "hello"})
        added = await registry.call_tool("alpha__add", {"a": 2, "b": 3.5})
        failed = await registry.call_tool("alpha__fail", {})

    assert (echoed.text, echoed.is_error) == ("hello", False)
    assert added.text == "5.5"
    assert failed.is_error


async def test_user_id_reaches_a_server_configured_to_receive_it_in_request_meta() -> None:
    async with McpRegistry([fake_server_config("alpha", send_user_id=True)], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        as_user = await registry.call_tool("alpha__whoami", {}, user_id="user-42")
        anonymous = await registry.call_tool("alpha__whoami", {})

    assert as_user.text == "user-42"
    assert anonymous.text == "anonymous"


async def test_user_id_is_not_sent_to_servers_not_configured_for_it() -> None:
    async with McpRegistry([fake_server_config("other")], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        output = await registry.call_tool("other__whoami", {}, user_id="user-42")

    assert output.text == "anonymous"


async def test_progress_notifications_reach_the_callback() -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with McpRegistry([fake_server_config("alpha")], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        output = await registry.call_tool("alpha__slow", {"seconds": 0.1}, on_progress=on_progress)

    assert output.text == "finished"
    assert seen[0] == (0, 3, "step 1 of 3")
    assert seen[-1] == (3, 3, "done")


async def test_huge_results_are_truncated_with_a_marker() -> None:
    async with McpRegistry([fake_server_config("alpha")], tool_result_max_chars=1000, **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        output = await registry.call_tool("alpha__flood", {"size": 2_000_000})

    assert output.truncated
    assert output.text == "x" * 1000 + "\n\n[truncated: showing 1000 of 2000000 characters]"


async def test_a_server_flooding_stderr_is_not_blocked() -> None:
    config = fake_server_config("alpha", tool_timeout_seconds=20)
    async with McpRegistry([config], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        # About 4.5 MB of stderr: far beyond a pipe's buffer, so this only answers if stderr is drained.
        output = await registry.call_tool("alpha__noisy", {"lines": 5000})
        echoed = await registry.call_tool("alpha__echo", {"text": "still here"})

    assert output.text == "wrote 5000 lines"
    assert echoed.text == "still here"


class LoggedLines(logging.Handler):
    """Counts log records that mention ``text``, and lets a test wait for a number of them."""

    def __init__(self, text: str, wanted: int) -> None:
        super().__init__()
        self.text = text
        self.wanted = wanted
        self.count = 0
        self.reached = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.count += 1
            if self.count >= self.wanted:
                self.reached.set()


async def test_a_server_flooding_stderr_without_end_does_not_hold_up_calls_to_another_server() -> None:
    stderr_logger = logging.getLogger("orchestrator.mcp.stderr")
    loud_lines = LoggedLines("MCP server loud stderr", wanted=20)  # the log's rate limit: the flood is on
    stderr_logger.addHandler(loud_lines)
    stderr_logger.setLevel(logging.INFO)
    try:
        configs = [fake_server_config("loud"), fake_server_config("quiet")]
        async with McpRegistry(configs, **FAST_BACKOFF) as registry:
            assert await registry.wait_until_settled(20)

            started = await registry.call_tool("loud__noisy", {"forever": True})
            with anyio.fail_after(10):
                await loud_lines.reached.wait()
                # Each round trip needs the event loop several times; a drain that never yields starves them.
                echoed = [(await registry.call_tool("quiet__echo", {"text": str(n)})).text for n in range(20)]
            statuses = {info.id: info.status for info in registry.servers()}
    finally:
        stderr_logger.removeHandler(loud_lines)
        stderr_logger.setLevel(logging.NOTSET)

    assert started.text == "writing forever"
    assert echoed == [str(n) for n in range(20)]
    assert statuses == {"loud": "healthy", "quiet": "healthy"}


async def test_server_that_never_answers_times_out_and_the_call_is_cancelled_on_it() -> None:
    config = fake_server_config("alpha", tool_timeout_seconds=0.5)
    async with McpRegistry([config], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        with anyio.fail_after(3), pytest.raises(ToolTimeout):
            await registry.call_tool("alpha__hang", {})
        cancellations = await registry.call_tool("alpha__cancellations", {"at_least": 1, "wait_seconds": 5})

    assert cancellations.text == "1"


async def test_a_cancelled_caller_cancels_the_call_on_the_server() -> None:
    async with McpRegistry([fake_server_config("alpha")], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        with anyio.move_on_after(0.3) as caller:
            await registry.call_tool("alpha__hang", {})
        cancellations = await registry.call_tool("alpha__cancellations", {"at_least": 1, "wait_seconds": 5})

    assert caller.cancelled_caught
    assert cancellations.text == "1"


async def test_server_killed_mid_call_fails_fast_then_reconnects() -> None:
    changes = Changes()
    config = fake_server_config("alpha", tool_timeout_seconds=30)
    async with McpRegistry([config], on_change=changes, **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        # The tool timeout is 30 s: failing within 5 means the process exit was noticed, not waited out.
        with anyio.fail_after(5), pytest.raises(ToolCallFailed):
            await registry.call_tool("alpha__crash", {})

        assert registry.server("alpha").status != "healthy"
        assert registry.server("alpha").last_error is not None
        assert "alpha__echo" not in {spec.name for spec in registry.tools()}
        with pytest.raises(ServerUnavailable):
            await registry.call_tool("alpha__echo", {"text": "too soon"})
        await changes.until(lambda: registry.server("alpha").status == "healthy")
        echoed = await registry.call_tool("alpha__echo", {"text": "back"})

    assert echoed.text == "back"


async def test_two_servers_with_the_same_tool_route_to_their_own_server() -> None:
    configs = [fake_server_config("left"), fake_server_config("right")]
    async with McpRegistry(configs, **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        names = {spec.name for spec in registry.tools()}
        left = await registry.call_tool("left__name", {})
        right = await registry.call_tool("right__name", {})

    assert {"left__name", "right__name"} <= names
    assert (left.text, right.text) == ("left", "right")


async def test_broken_servers_do_not_delay_or_break_a_healthy_one() -> None:
    statuses: dict[str, list[str]] = {"unreachable": [], "missing": []}
    configs = [
        ServerConfig(id="unreachable", transport="streamable-http", url="http://127.0.0.1:9/mcp"),
        ServerConfig(id="missing", transport="stdio", command="/nonexistent/mcp-server"),
        fake_server_config("healthy"),
    ]

    def record() -> None:
        for server_id, seen in statuses.items():
            status = registry.server(server_id).status
            if not seen or seen[-1] != status:
                seen.append(status)

    changes = Changes()

    def on_change() -> None:
        record()
        changes()

    registry = McpRegistry(configs, on_change=on_change, **FAST_BACKOFF)
    async with registry:
        assert not registry.settled  # entering did not wait for any server
        assert await registry.wait_until_settled(20)

        output = await registry.call_tool("healthy__echo", {"text": "fine"})
        infos = {info.id: info for info in registry.servers()}
        # Each broken server fails, waits, and tries again, unhealthy all along.
        await changes.until(lambda: all(registry.server(s).failed_attempts >= 3 for s in statuses))
        since_first_failure = {s: seen[seen.index("unhealthy") :] for s, seen in statuses.items()}

    assert output.text == "fine"
    assert infos["healthy"].status == "healthy"
    assert infos["healthy"].tool_count == 18
    assert since_first_failure == {"unreachable": ["unhealthy"], "missing": ["unhealthy"]}
    for server_id in ("unreachable", "missing"):
        assert infos[server_id].last_error
    assert {spec.server_id for spec in registry.tools()} <= {"healthy"}


async def test_a_server_that_never_finishes_connecting_times_out() -> None:
    silent = ServerConfig(
        id="silent",
        transport="stdio",
        command=sys.executable,
        args=("-c", "import sys; sys.stdin.read()"),
        connect_timeout_seconds=0.5,
    )
    async with McpRegistry([silent], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(10)

        info = registry.server("silent")

    assert info.status == "unhealthy"
    assert info.last_error == "did not connect within 0.5s"


async def test_unknown_tools_and_servers_are_reported() -> None:
    async with McpRegistry([], **FAST_BACKOFF) as registry:
        assert registry.settled
        with pytest.raises(ToolNotFound):
            await registry.call_tool("nobody__nothing", {})
        with pytest.raises(ServerNotFound):
            registry.server("nobody")
        with pytest.raises(ServerNotFound):
            await registry.remove("nobody")


async def test_servers_can_be_added_and_removed_at_run_time() -> None:
    changes = Changes()
    async with McpRegistry([], on_change=changes, **FAST_BACKOFF) as registry:
        info = await registry.add(fake_server_config("late", name="late"))
        with pytest.raises(Conflict):
            await registry.add(fake_server_config("late"))
        assert info.status == "connecting"
        await changes.until(lambda: registry.server("late").status == "healthy")
        answered = await registry.call_tool("late__name", {})

        await registry.remove("late")

        assert registry.tools() == []
        assert registry.servers() == []
        with pytest.raises(ToolNotFound):
            await registry.call_tool("late__name", {})

    assert answered.text == "late"


def test_duplicate_server_ids_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        McpRegistry([fake_server_config("twin"), fake_server_config("twin")])


async def test_disabled_servers_are_listed_as_stopped_and_not_started() -> None:
    # A command that cannot start: any attempt would leave an error and pass through "connecting".
    off = ServerConfig(id="off", transport="stdio", command="/nonexistent/mcp-server", enabled=False)
    seen: list[str] = []

    def record() -> None:
        seen.extend(info.status for info in registry.servers())

    registry = McpRegistry([off], on_change=record, **FAST_BACKOFF)
    async with registry:
        assert await registry.wait_until_settled(5)
        added = await registry.add(fake_server_config("later", enabled=False))
        await anyio.wait_all_tasks_blocked()

        infos = registry.servers()

    assert [(info.id, info.status, info.tool_count, info.last_error) for info in infos] == [
        ("off", "stopped", 0, None),
        ("later", "stopped", 0, None),
    ]
    assert added.status == "stopped"
    assert set(seen) == {"stopped"}


async def test_tools_added_at_run_time_appear_after_list_changed() -> None:
    changes = Changes()
    async with McpRegistry([fake_server_config("alpha")], on_change=changes, **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)

        await registry.call_tool("alpha__add_tool", {"tool_name": "fresh"})
        await changes.until(lambda: "alpha__fresh" in {spec.name for spec in registry.tools()})
        output = await registry.call_tool("alpha__fresh", {})

    assert output.text == "fresh is here"


async def test_pending_calls_fail_when_their_server_dies() -> None:
    config = fake_server_config("alpha", tool_timeout_seconds=30)
    async with McpRegistry([config], **FAST_BACKOFF) as registry:
        assert await registry.wait_until_settled(20)
        hang_failed = anyio.Event()

        async def hang() -> None:
            with pytest.raises(ToolCallFailed):
                await registry.call_tool("alpha__hang", {})
            hang_failed.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(hang)
            with pytest.raises(ToolCallFailed):
                await registry.call_tool("alpha__crash", {})
            with anyio.fail_after(5):
                await hang_failed.wait()
