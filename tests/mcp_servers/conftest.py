"""Fixtures for the first-party server tests; the machinery is in ``harness``."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def user() -> str:
    """A fresh user id, so a test never meets another test's data on the shared servers."""
    return f"user-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def other_user() -> str:
    """A second fresh user id, for isolation tests."""
    return f"other-{uuid.uuid4().hex[:12]}"
