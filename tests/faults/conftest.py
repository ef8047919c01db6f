"""Fault suite fixtures and its closing summary: what each case injected, and what it survived.

The summary is printed by `pytest_terminal_summary` whether or not `-s` is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

REPORT: list[CaseReport] = []


@dataclass
class CaseReport:
    case: str
    injected: dict[str, int] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)  # e.g. "apply exit 0 (3.1s)"
    survived: list[str] = field(default_factory=list)
    ok: bool = False


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Any:
    rep = CaseReport(request.node.name)
    REPORT.append(rep)
    return rep


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT:
        return
    tr = terminalreporter
    tr.section("fault suite: injected and survived")
    for rep in REPORT:
        tr.write_line(f"{'CONVERGED' if rep.ok else 'FAILED   '} {rep.case}")
        for what, n in sorted(rep.injected.items()):
            tr.write_line(f"    injected: {n} × {what}")
        for run in rep.runs:
            tr.write_line(f"    ran:      {run}")
        for s in rep.survived:
            tr.write_line(f"    checked:  {s}")
