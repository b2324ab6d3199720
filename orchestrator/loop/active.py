"""The turns running in this process, so a Stop can reach them and a conversation runs one turn at a time."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager

import anyio

from orchestrator.errors import TurnInProgress


class ActiveTurns:
    def __init__(self) -> None:
        self._scopes: dict[str, tuple[str, anyio.CancelScope]] = {}

    @contextmanager
    def claim(self, user_id: str, conversation_id: str) -> Generator[anyio.CancelScope]:
        """Register a turn for the conversation and yield the cancel scope a Stop will cancel.

        Raises:
            TurnInProgress: the conversation already has a turn running.
        """
        if conversation_id in self._scopes:
            raise TurnInProgress(conversation_id)
        scope = anyio.CancelScope()
        self._scopes[conversation_id] = (user_id, scope)
        try:
            yield scope
        finally:
            del self._scopes[conversation_id]

    def running(self, conversation_id: str) -> bool:
        return conversation_id in self._scopes

    def stop(self, user_id: str, conversation_id: str) -> bool:
        """Cancel the user's running turn in the conversation; False when none is running."""
        entry = self._scopes.get(conversation_id)
        if entry is None or entry[0] != user_id:
            return False
        entry[1].cancel()
        return True

    def __len__(self) -> int:
        return len(self._scopes)

    def cancel_all(self) -> None:
        for _, scope in self._scopes.values():
            scope.cancel()
