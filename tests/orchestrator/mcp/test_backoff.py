from __future__ import annotations

import pytest

from orchestrator.mcp.backoff import Backoff


def test_delays_double_up_to_the_maximum_with_jitter() -> None:
    backoff = Backoff(0.5, 4.0)

    delays = [backoff.next_delay() for _ in range(6)]

    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True))


def test_reset_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(0.5, 30.0)
    for _ in range(10):
        backoff.next_delay()

    backoff.reset()

    assert backoff.next_delay() <= 0.5


def test_nonsensical_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(5.0, 1.0)
