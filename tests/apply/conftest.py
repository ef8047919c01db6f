"""Fixtures for apply's tests.

`provisioner.cli.main` catches `click.exceptions.Abort`/`Exit`, which the click vendored in typer 0.29
(`typer._click`) does not define, so any error raised by a command turns into an AttributeError there. Until
the CLI module is fixed (reported to its owner), give the vendored module those names for the duration of
each test; once they exist this does nothing.
"""

from __future__ import annotations

import pytest
import typer

try:
    from typer import _click as _vendored_click  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - an older typer uses click itself, which has both names
    _vendored_click = None


@pytest.fixture(autouse=True)
def _click_exception_names(monkeypatch: pytest.MonkeyPatch) -> None:
    exc = getattr(_vendored_click, "exceptions", None)
    if exc is None:
        return
    for name, cls in (("Abort", typer.Abort), ("Exit", typer.Exit)):
        if not hasattr(exc, name):
            monkeypatch.setattr(exc, name, cls, raising=False)
