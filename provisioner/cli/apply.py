"""`provision apply`: not built yet (placeholder so the command is registered and says so)."""

from __future__ import annotations

from typing import Any

from provisioner.cli import not_built


def run(**options: Any) -> int:
    return not_built("apply")
