"""Following a reply over SSE: a client that lost its stream reconnects with Last-Event-ID and gets exactly the rest."""

from __future__ import annotations

from tests.fakes.openai_server import FakeOpenAI, hang, text
from tests.support.service import Service
from tests.support.sse import Event
from tests.support.turns import follow_turn, new_conversation, open_stream, stream_turn, tokens

ANSWER = "The answer arrives in two halves, with a pause in the middle of it."


async def test_a_client_that_reconnects_mid_stream_gets_exactly_the_rest_of_the_answer(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    # Three chunks now, the rest after a pause: the client leaves during the pause.
    fake_openai.script(hang(0.5, then=text(ANSWER, chunk_size=4), after_chunks=4))
    conversation = await new_conversation(service.client)

    before: list[Event] = []
    async with open_stream(service.client, conversation, "answer slowly") as events:
        async for event in events:
            before.append(event)
            if event.event == "token" and len(tokens(before)) >= 8:
                break
    last_id = before[-1].id
    assert last_id is not None
    after = await follow_turn(service.client, conversation, last_id)

    assert tokens(before) + tokens(after) == ANSWER
    assert [event.event for event in after][-1] == "message_end"
    assert after[-1].data["content"] == ANSWER
    ids = [event.id for event in before + after]
    assert len(set(ids)) == len(ids)


async def test_after_the_reply_ended_a_reconnect_gets_what_it_missed_then_nothing(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(text(ANSWER))
    conversation = await new_conversation(service.client)
    events = await stream_turn(service.client, conversation, "answer")
    middle = events[len(events) // 2]
    assert middle.id is not None
    assert events[-1].id is not None

    missed = await follow_turn(service.client, conversation, middle.id)
    by_query = await service.client.get(f"/api/conversations/{conversation}/events", params={"after": middle.id})
    nothing_missed = await service.client.get(
        f"/api/conversations/{conversation}/events", headers={"Last-Event-ID": events[-1].id}
    )
    nothing_running = await service.client.get(f"/api/conversations/{conversation}/events")

    assert missed == events[len(events) // 2 + 1 :]
    assert by_query.status_code == 200
    assert (nothing_missed.status_code, nothing_running.status_code) == (204, 204)


async def test_following_a_conversation_that_never_had_a_reply_answers_at_once(service: Service) -> None:
    conversation = await new_conversation(service.client)

    response = await service.client.get(f"/api/conversations/{conversation}/events")

    assert response.status_code == 204


async def test_an_event_id_that_is_not_ours_is_refused(service: Service) -> None:
    conversation = await new_conversation(service.client)
    url = f"/api/conversations/{conversation}/events"

    statuses = [
        (await service.client.get(url, headers={"Last-Event-ID": last_event_id})).status_code
        for last_event_id in ["nonsense", "turn.1", "x" * 300]
    ]

    assert statuses == [422, 422, 422]


async def test_several_clients_follow_one_reply_and_a_late_one_gets_it_from_the_start(
    service: Service, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(hang(0.3, then=text(ANSWER, chunk_size=4), after_chunks=3))
    conversation = await new_conversation(service.client)

    async with open_stream(service.client, conversation, "answer") as events:
        first = await anext(events)
        late = await follow_turn(service.client, conversation)
        rest = [event async for event in events]

    assert first.event == "message_start"
    assert late == [first, *rest]
    assert tokens(late) == ANSWER
