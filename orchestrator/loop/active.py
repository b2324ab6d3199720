"""The turns running in this process, so a Stop can reach them and a conversation runs one turn at a time."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from orchestrator.errors import TurnInProgress


@dataclass(eq=False)
class TurnHandle:
    """A claim on one conversation's turn; ``scope`` is what a Stop cancels. ``release`` may be called twice."""

    conversation_id: str
    user_id: str
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    released: anyio.Event = field(default_factory=anyio.Event)
    _registry: ActiveTurns | None = None

    def release(self) -> None:
        if self._registry is not None:
            self._registry.forget(self)
            self._registry = None
        self.released.set()


class ActiveTurns:
    """Keyed by (user, conversation): another user's request for the same id never learns that a turn runs."""

    def __init__(self) -> None:
        self._handles: dict[tuple[str, str], TurnHandle] = {}

    def acquire(self, user_id: str, conversation_id: str) -> TurnHandle:
        """Claim the conversation for one turn; release the handle when the turn is over.

        Raises:
            TurnInProgress: the conversation already has a turn running.
        """
        key = (user_id, conversation_id)
        if key in self._handles:
            raise TurnInProgress(conversation_id)
        handle = TurnHandle(conversation_id, user_id, _registry=self)
        self._handles[key] = handle
        return handle

    def forget(self, handle: TurnHandle) -> None:
        key = (handle.user_id, handle.conversation_id)
        if self._handles.get(key) is handle:
            del self._handles[key]

    def get(self, user_id: str, conversation_id: str) -> TurnHandle | None:
        return self._handles.get((user_id, conversation_id))

    def running(self, user_id: str, conversation_id: str) -> bool:
        return (user_id, conversation_id) in self._handles

    def stop(self, user_id: str, conversation_id: str) -> bool:
        """Cancel the user's running turn in the conversation; False when none is running."""
        handle = self._handles.get((user_id, conversation_id))
        if handle is None:
            return False
        handle.scope.cancel()
        return True

    def __len__(self) -> int:
        return len(self._handles)

    def cancel_all(self) -> None:
        for handle in self._handles.values():
            handle.scope.cancel()
