"""Fixtures for tests/graph: emulator state files (the demo tenant, a 20,000-user synthetic tenant)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.emulator.demo import demo_state, synthetic_state
from provisioner.emulator.state import TenantState


@pytest.fixture(scope="session")
def tenant20k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("t20k") / "tenant.json"
    TenantState.from_dict(synthetic_state(20_000, 7)).save(path)
    return path


@pytest.fixture
def demo_path(tmp_path: Path) -> Path:
    path = tmp_path / "demo.json"
    TenantState.from_dict(demo_state()).save(path)
    return path
