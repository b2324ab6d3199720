"""Stop requests that reach the replica running the turn.

A turn runs in the process that took its request (or that resumed it after its replica died). A Stop that lands
on another replica is published on the ``turns`` channel; every replica that heard it answers whether it stopped
the turn, and the asking replica waits for those answers (bounded), so ``POST .../stop`` says truthfully whether a
turn was stopped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import anyio

from orchestrator.cluster.bus import Message, MessageBus
from orchestrator.loop.active import ActiveTurns

CHANNEL = "turns"
ANSWER_TIMEOUT_SECONDS = 2.0


@dataclass(eq=False)
class _Question:
    expected: int
    answered: int = 0
    stopped: bool = False
    done: anyio.Event = field(default_factory=anyio.Event)

    def answer(self, stopped: bool) -> None:
        self.answered += 1
        self.stopped = self.stopped or stopped
        if self.stopped or self.answered >= self.expected:
            self.done.set()


class TurnStops:
    """Stops a user's running turn wherever it runs."""

    def __init__(self, bus: MessageBus, turns: ActiveTurns, *, timeout_seconds: float = ANSWER_TIMEOUT_SECONDS) -> None:
        self._bus = bus
        self._turns = turns
        self._timeout = timeout_seconds
        self._questions: dict[str, _Question] = {}
        bus.subscribe(CHANNEL, self._on_message)

    async def stop(self, user_id: str, conversation_id: str) -> bool:
        """Cancel the user's running turn in the conversation, here or on another replica; False when none runs."""
        if self._turns.stop(user_id, conversation_id):
            return True
        request_id = uuid.uuid4().hex
        question = self._questions[request_id] = _Question(expected=1)
        try:
            heard = await self._bus.publish(
                CHANNEL,
                {
                    "kind": "stop",
                    "request_id": request_id,
                    "reply_to": self._bus.node_id,
                    "user_id": user_id,
                    "conversation_id": conversation_id,
                },
            )
            if heard == 0:
                return False
            question.expected = heard
            if question.answered >= heard:
                question.done.set()
            with anyio.move_on_after(self._timeout):
                await question.done.wait()
            return question.stopped
        finally:
            del self._questions[request_id]

    async def _on_message(self, message: Message) -> None:
        kind = message.get("kind")
        if kind == "stop":
            user_id, conversation_id = message.get("user_id"), message.get("conversation_id")
            if not isinstance(user_id, str) or not isinstance(conversation_id, str):
                return
            stopped = self._turns.stop(user_id, conversation_id)
            await self._bus.publish(
                CHANNEL,
                {
                    "kind": "answer",
                    "request_id": message.get("request_id"),
                    "to": message.get("reply_to"),
                    "stopped": stopped,
                },
            )
        elif kind == "answer" and message.get("to") == self._bus.node_id:
            question = self._questions.get(str(message.get("request_id")))
            if question is not None:
                question.answer(bool(message.get("stopped")))
