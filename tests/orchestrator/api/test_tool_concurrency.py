"""Which of a step's tool calls run side by side: read-only or idempotent ones, within each server's limit."""

from __future__ import annotations

from typing import Any

from tests.fakes.openai_server import FakeOpenAI, text, tool_calls
from tests.orchestrator.api.conftest import SettingsFactory, stdio_test_server
from tests.support.service import Service, running_service
from tests.support.turns import json_turn, new_conversation


def overlaps(reply: dict[str, Any]) -> list[int]:
    """What each ``read``/``write`` call answered: the most calls that ran at once while it ran."""
    return [int(call["result"]) for call in reply["tool_calls"]]


async def test_changes_run_one_after_the_other_in_order_and_reads_run_together(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        tool_calls([("test__write", {"seconds": 0.3}), ("test__write", {"seconds": 0.3})]),
        tool_calls([("test__read", {"seconds": 0.3}), ("test__read", {"seconds": 0.3})]),
        text("Done."),
    )

    reply = await json_turn(service.client, await new_conversation(service.client), "write twice, then read twice")

    assert overlaps(reply) == [1, 1, 2, 2]


async def test_a_server_runs_no_more_calls_at_once_than_its_limit(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    settings = make_settings({"test": {**stdio_test_server(), "maxConcurrentCalls": 2}})
    fake_openai.script(tool_calls([("test__read", {"seconds": 0.3})] * 3), text("Done."))
    async with running_service(settings) as service:
        reply = await json_turn(service.client, await new_conversation(service.client), "read three times")

    assert max(overlaps(reply)) == 2
