"""Apply progress on stderr: a rich progress bar on a terminal, one plain line per outcome otherwise."""

from __future__ import annotations

import sys
import threading
from typing import Protocol, TextIO


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, upn: str, action_type: str, status: str, detail: str = "") -> None: ...
    def stop(self) -> None: ...


class NullProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, upn: str, action_type: str, status: str, detail: str = "") -> None:
        pass

    def stop(self) -> None:
        pass


class LineProgress:
    """`[12/40] alice@contoso.com assignLicenses: succeeded` — for logs and CI, where bars are noise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.total = 0
        self.done = 0
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        self.total = total
        self.done = 0

    def advance(self, upn: str, action_type: str, status: str, detail: str = "") -> None:
        with self._lock:
            self.done += 1
            stream = self.stream or sys.stderr
            extra = f" ({detail})" if detail else ""
            print(f"[{self.done}/{self.total}] {upn} {action_type}: {status}{extra}", file=stream, flush=True)

    def stop(self) -> None:
        pass


class BarProgress:
    """A rich progress bar (transient: it leaves the screen to the summary); failures are printed above it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.console = Console(file=stream or sys.stderr)
        self._bar = RichProgress(
            TextColumn("applying"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(), console=self.console, transient=True,
        )  # fmt: skip
        self._task = self._bar.add_task("apply", total=0, failed=0)
        self._failed = 0
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        self._bar.update(self._task, total=total)
        self._bar.start()

    def advance(self, upn: str, action_type: str, status: str, detail: str = "") -> None:
        with self._lock:
            if status != "succeeded":
                self._failed += status == "failed"
                extra = f" ({detail})" if detail else ""
                self._bar.console.print(
                    f"{upn} {action_type}: {status}{extra}", markup=False, highlight=False
                )
            self._bar.update(self._task, advance=1, failed=self._failed)

    def stop(self) -> None:
        self._bar.stop()


def make_progress(stream: TextIO | None = None, *, quiet: bool = False) -> Progress:
    """The right reporter for `stream` (stderr by default): a bar on a terminal, plain lines otherwise."""
    if quiet:
        return NullProgress()
    s = stream or sys.stderr
    isatty = getattr(s, "isatty", None)
    if isatty is not None and isatty():
        return BarProgress(s)
    return LineProgress(stream)
