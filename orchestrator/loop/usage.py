"""Token accounting for the loop: every model call's tokens are recorded, and daily quotas end turns.

A user's quota is checked when a turn starts and before each further model call, against what the store says the
user spent today (UTC) plus what the running turn spent since. Turns of the same user running at the same time can
therefore pass the quota by at most one model call each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from orchestrator.memory.usage import UsageStore

logger = logging.getLogger(__name__)


class TokenMeter:
    """Records tokens per user, conversation and model, and knows each user's daily quota.

    Args:
        store: where usage is kept.
        quota_for: tokens a user may spend per UTC day (``None``: no limit).
        clock: the source of "today".
    """

    def __init__(
        self,
        store: UsageStore,
        quota_for: Callable[[str], int | None],
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._quota_for = quota_for
        self._clock = clock or (lambda: datetime.now(UTC))

    def quota(self, user_id: str) -> int | None:
        return self._quota_for(user_id)

    async def remaining_today(self, user_id: str) -> int | None:
        """Tokens the user may still spend today; ``None`` without a quota (the store is not asked then)."""
        quota = self._quota_for(user_id)
        if quota is None:
            return None
        used = await self._store.tokens_used(user_id, self._clock().astimezone(UTC).date())
        return max(0, quota - used)

    async def record(
        self, user_id: str, conversation_id: str, model: str, prompt_tokens: int, completion_tokens: int
    ) -> None:
        if prompt_tokens <= 0 and completion_tokens <= 0:
            return
        await self._store.record_usage(user_id, conversation_id, model, prompt_tokens, completion_tokens)
