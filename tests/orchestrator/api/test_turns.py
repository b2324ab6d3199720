"""Chat turns through the HTTP API: the real loop, the fake model over HTTP, the test MCP server over stdio."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import anyio
import pytest

from tests.fakes.openai_server import FakeOpenAI, cut, echo, error, hang, text, tool_calls
from tests.orchestrator.api.conftest import SettingsFactory
from tests.support.service import Service, running_service
from tests.support.turns import json_turn, names, new_conversation, open_stream, stored_messages, stream_turn


async def test_a_streamed_turn_calls_the_tool_then_answers(service: Service, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls([("test__echo", {"text": "ping"})]), text("The tool said ping."))
    conversation = await new_conversation(service.client)

    events = await stream_turn(service.client, conversation, "Echo ping, please.")

    assert names(events) == ["message_start", "tool_call_started", "tool_call_finished", "token", "message_end"]
    started, finished = events[1].data, events[2].data
    assert (started["server_id"], started["tool"], json.loads(started["arguments"])) == (
        "test",
        "echo",
        {"text": "ping"},
    )
    assert (finished["is_error"], finished["result"]) == (False, "ping")
    end = events[-1].data
    assert (end["status"], end["content"], end["tool_iterations"]) == ("complete", "The tool said ping.", 1)
    assert "".join(e.data["text"] for e in events if e.event == "token") == "The tool said ping."


async def test_every_step_of_a_turn_is_stored_in_order(service: Service, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls([("test__echo", {"text": "ping"})]), text("Done."))
    conversation = await new_conversation(service.client)

    await json_turn(service.client, conversation, "Echo ping")

    messages = await stored_messages(service.client, conversation)
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
        ("tool", "complete"),
        ("assistant", "complete"),
    ]
    assert messages[1]["tool_calls"][0]["name"] == "test__echo"
    assert messages[2]["tool_call_id"] == messages[1]["tool_calls"][0]["id"]
    assert messages[2]["content"] == "ping"
    assert messages[2]["duration_ms"] is not None
    assert messages[3]["prompt_tokens"] > 0
    assert [m["seq"] for m in messages] == sorted(m["seq"] for m in messages)


async def test_the_first_message_names_the_conversation(service: Service, fake_openai: FakeOpenAI) -> None:
    conversation = await new_conversation(service.client)

    await json_turn(service.client, conversation, "  Plan a   trip to Lisbon\nin May  ")

    detail = (await service.client.get(f"/api/conversations/{conversation}")).json()
    assert detail["title"] == "Plan a trip to Lisbon in May"


async def test_the_model_sees_the_earlier_turns(service: Service, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls([("test__echo", {"text": "one"})]), text("First."), text("Second."))
    conversation = await new_conversation(service.client)

    await json_turn(service.client, conversation, "first question")
    await json_turn(service.client, conversation, "second question")

    last_request = fake_openai.requests[-1]["messages"]
    assert [m["role"] for m in last_request] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert last_request[-1]["content"] == "second question"


async def test_parallel_tool_calls_run_concurrently_and_each_gets_exactly_one_result(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        tool_calls(
            [("test__slow", {"seconds": 0.4}), ("test__slow", {"seconds": 0.4}), ("test__add", {"a": 2, "b": 3})]
        ),
        text("All done."),
    )
    conversation = await new_conversation(service.client)

    reply = await json_turn(service.client, conversation, "three things at once")

    assert reply["status"] == "complete"
    tool_messages = [m for m in fake_openai.requests[-1]["messages"] if m["role"] == "tool"]
    call_ids = [c["id"] for c in fake_openai.requests[-1]["messages"][-4]["tool_calls"]]
    assert [m["tool_call_id"] for m in tool_messages] == call_ids
    stored = [m for m in await stored_messages(service.client, conversation) if m["role"] == "tool"]
    slow = [m for m in stored if m["tool_name"] == "test__slow"]
    assert len(slow) == 2
    # The two slow calls ran at the same time: the second started before the first finished.
    first, second = sorted(slow, key=lambda m: m["started_at"])
    first_end = datetime.fromisoformat(first["started_at"]) + timedelta(milliseconds=first["duration_ms"])
    assert datetime.fromisoformat(second["started_at"]) < first_end


async def test_tool_errors_unknown_tools_and_malformed_arguments_go_back_to_the_model(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        tool_calls([("nope__missing", {}), ("test__add", "{not json"), ("test__fail", {}), ("test__add", "[1, 2]")]),
        text("I could not do it."),
    )
    conversation = await new_conversation(service.client)

    events = await stream_turn(service.client, conversation, "try everything")

    finished = [e.data for e in events if e.event == "tool_call_finished"]
    assert len(finished) == 4
    assert all(f["is_error"] for f in finished)
    assert events[-1].data["status"] == "complete"
    results = [m for m in fake_openai.requests[-1]["messages"] if m["role"] == "tool"]
    assert len(results) == 4
    assert all(m["content"] for m in results)


async def test_a_huge_tool_result_is_truncated_with_a_visible_marker(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(tool_calls([("test__flood", {"size": 3_000_000})]), text("That was long."))
    async with running_service(make_settings(tool_result_max_chars=5_000)) as service:
        conversation = await new_conversation(service.client)

        events = await stream_turn(service.client, conversation, "flood me")

    finished = next(e.data for e in events if e.event == "tool_call_finished")
    assert finished["truncated"]
    sent = next(m for m in fake_openai.requests[-1]["messages"] if m["role"] == "tool")["content"]
    assert len(sent) < 6_000
    assert "truncated" in sent


async def test_the_turn_ends_clearly_after_the_maximum_tool_iterations(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reset(responder=lambda _request: tool_calls([("test__echo", {"text": "again"})]))
    async with running_service(make_settings(max_tool_iterations=3)) as service:
        conversation = await new_conversation(service.client)

        events = await stream_turn(service.client, conversation, "loop forever")

        messages = await stored_messages(service.client, conversation)
    errors = [e.data for e in events if e.event == "error"]
    assert [e["code"] for e in errors] == ["max_tool_iterations"]
    assert events[-1].data["status"] == "incomplete"
    assert events[-1].data["tool_iterations"] == 3
    assert len(fake_openai.requests) == 4
    assert sum(1 for m in messages if m["role"] == "tool") == 3


async def test_the_turn_ends_clearly_when_the_token_budget_is_spent(
    make_settings: SettingsFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reset(responder=lambda _request: tool_calls([("test__echo", {"text": "x" * 4000})]))
    async with running_service(make_settings(turn_token_budget=1_000)) as service:
        conversation = await new_conversation(service.client)

        events = await stream_turn(service.client, conversation, "spend tokens")
        reply = await json_turn(service.client, await new_conversation(service.client), "spend tokens again")

    assert [e.data["code"] for e in events if e.event == "error"] == ["token_budget"]
    assert (reply["status"], reply["error_code"]) == ("incomplete", "token_budget")
    assert events[-1].data["status"] == "incomplete"


async def test_rate_limits_are_retried_honouring_retry_after(service: Service, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(error(429, retry_after=0), error(503), text("Finally."))
    conversation = await new_conversation(service.client)

    reply = await json_turn(service.client, conversation, "hello")

    assert (reply["status"], reply["content"]) == ("complete", "Finally.")


async def test_a_model_that_keeps_failing_ends_the_turn_with_an_error_and_keeps_the_message(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reset(responder=lambda _request: error(500))
    conversation = await new_conversation(service.client)

    events = await stream_turn(service.client, conversation, "are you there?")

    assert [e.data["code"] for e in events if e.event == "error"] == ["model_error"]
    assert events[-1].data["status"] == "error"
    messages = await stored_messages(service.client, conversation)
    assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "error")]
    assert messages[0]["content"] == "are you there?"
    # The conversation goes on once the model is back.
    fake_openai.reset(responder=echo)
    reply = await json_turn(service.client, conversation, "now?")
    assert reply["status"] == "complete"


async def test_a_stream_cut_mid_answer_is_kept_and_marked_incomplete(service: Service, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(cut(4, text("This answer will be cut in the middle of a sentence.", chunk_size=4)))
    conversation = await new_conversation(service.client)

    events = await stream_turn(service.client, conversation, "tell me")

    assert events[-1].data["status"] == "incomplete"
    partial = "".join(e.data["text"] for e in events if e.event == "token")
    assert partial
    assert "This answer will be cut".startswith(partial) or partial.startswith("This")
    stored = (await stored_messages(service.client, conversation))[-1]
    assert (stored["role"], stored["status"], stored["content"]) == ("assistant", "incomplete", partial)


async def test_stop_cancels_the_tool_call_and_leaves_a_conversation_that_continues(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(tool_calls([("test__hang", {})]))
    conversation = await new_conversation(service.client)
    seen: list[str] = []

    async with open_stream(service.client, conversation, "wait forever") as events:
        async for event in events:
            seen.append(event.event)
            if event.event == "tool_call_progress" and "stop" not in seen:
                # Progress means the server runs the call: a stop before that has nothing to cancel there.
                seen.append("stop")
                stop = await service.client.post(f"/api/conversations/{conversation}/stop")
                assert stop.json() == {"stopped": True}
            if event.event == "message_end":
                assert event.data["status"] == "incomplete"

    assert "stop" in seen
    assert seen[-1] == "message_end"
    cancelled = await service.state.registry.call_tool("test__cancellations", {"at_least": 1, "wait_seconds": 5})
    assert int(cancelled.text) >= 1
    messages = await stored_messages(service.client, conversation)
    assert [m["role"] for m in messages][:3] == ["user", "assistant", "tool"]
    assert messages[2]["is_error"]
    fake_openai.script(text("Back again."))
    assert (await json_turn(service.client, conversation, "hello?"))["content"] == "Back again."


async def test_a_second_message_while_a_reply_runs_is_refused(service: Service, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_calls([("test__hang", {})]))
    conversation = await new_conversation(service.client)

    async with open_stream(service.client, conversation, "first") as events:
        async for event in events:
            if event.event == "tool_call_started":
                second = await service.client.post(f"/api/conversations/{conversation}/messages", json={"content": "2"})
                assert (second.status_code, second.json()["code"]) == (409, "conflict")
                await service.client.post(f"/api/conversations/{conversation}/stop")


async def test_a_client_that_disconnects_leaves_its_turn_running_until_it_is_stopped(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(tool_calls([("test__hang", {})]))
    conversation = await new_conversation(service.client)

    async with open_stream(service.client, conversation, "then leave") as events:
        async for event in events:
            if event.event == "tool_call_started":
                break
    handle = service.state.turns.get("local", conversation)
    assert handle is not None
    assert not handle.released.is_set()
    detail = (await service.client.get(f"/api/conversations/{conversation}")).json()
    assert detail["running_turn"] is not None

    stopped = await service.client.post(f"/api/conversations/{conversation}/stop")
    with anyio.fail_after(10):
        await handle.released.wait()

    assert stopped.json() == {"stopped": True}
    messages = await stored_messages(service.client, conversation)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[-1]["status"] == "incomplete"
    assert (await service.client.get(f"/api/conversations/{conversation}")).json()["running_turn"] is None


@pytest.mark.parametrize("accept", ["application/json", "*/*"])
async def test_clients_that_do_not_ask_for_a_stream_get_the_finished_reply(
    service: Service, fake_openai: FakeOpenAI, accept: str
) -> None:
    fake_openai.script(tool_calls([("test__add", {"a": 1, "b": 2})]), text("Three."))
    conversation = await new_conversation(service.client)

    response = await service.client.post(
        f"/api/conversations/{conversation}/messages", json={"content": "1+2"}, headers={"Accept": accept}
    )

    reply = response.json()
    assert (response.status_code, reply["status"], reply["content"], reply["error_code"]) == (
        200,
        "complete",
        "Three.",
        None,
    )
    assert [(c["name"], c["result"], c["is_error"]) for c in reply["tool_calls"]] == [("test__add", "3.0", False)]


async def test_stop_cancels_the_model_stream_and_keeps_what_arrived(service: Service, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        hang(60, then=text("Half of this arrives, then the model stalls.", chunk_size=5), after_chunks=3)
    )
    conversation = await new_conversation(service.client)
    received: list[str] = []
    end: dict[str, object] = {}

    async with open_stream(service.client, conversation, "talk slowly") as events:
        async for event in events:
            if event.event == "token":
                received.append(event.data["text"])
                if len(received) == 2:
                    assert (await service.client.post(f"/api/conversations/{conversation}/stop")).json()["stopped"]
            if event.event == "message_end":
                end = event.data

    assert end["status"] == "incomplete"
    stored = (await stored_messages(service.client, conversation))[-1]
    assert (stored["role"], stored["status"], stored["content"]) == ("assistant", "incomplete", "".join(received))
