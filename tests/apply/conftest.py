"""Fixtures for apply's tests: a shim for a known CLI defect (see known_bugs.py) while it lasts."""

from __future__ import annotations

import pytest
import typer
from known_bugs import vendored_click


@pytest.fixture(autouse=True)
def _click_exception_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give typer's vendored click the two names `provisioner.cli.main` catches, for the duration of a test;
    once they exist (or main stops naming them) this does nothing."""
    exc = getattr(vendored_click, "exceptions", None)
    if exc is None:
        return
    for name, cls in (("Abort", typer.Abort), ("Exit", typer.Exit)):
        if not hasattr(exc, name):
            monkeypatch.setattr(exc, name, cls, raising=False)
