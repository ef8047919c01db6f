"""Fixtures for the emulator tests."""

from __future__ import annotations

import pytest
from emu_helpers import Client, make_client


@pytest.fixture
def client() -> Client:
    """A fresh demo tenant (CONTRACT §4) behind the in-process app."""
    return make_client()
