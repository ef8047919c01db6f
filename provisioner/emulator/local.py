"""An emulated tenant backed by a state file: the app for `--tenant emulator:PATH` and for `serve`.

Impure (file I/O). Writes are persisted atomically (temp file + os.replace, so a kill -9 leaves either the
old or the new file, never a torn one) and coalesced: a 10,000-change apply is not 10,000 rewrites.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

from starlette.applications import Starlette

from provisioner.emulator.demo import demo_state
from provisioner.emulator.faults import FaultConfig
from provisioner.emulator.routes import create_app
from provisioner.emulator.state import StateError, TenantState

MIN_SAVE_INTERVAL_S = 0.5


class LocalTenant:
    """Load PATH (or create it from the demo tenant: `.created`), serve it as `.app`, persist writes.

    Coalescing: a write marks the state dirty and saves at once only when the last save is older than the
    save interval (0.5 s, or 4x the last save's duration for a big tenant, so saving stays a small share of
    the time); `flush()` / `close()` save whatever is pending.
    """

    def __init__(self, path: str | os.PathLike[str], *, faults: FaultConfig | None = None) -> None:
        self.path = Path(path)
        self.created = not self.path.exists()
        if self.created:
            if not self.path.parent.is_dir():
                raise StateError(f"{self.path}: folder {self.path.parent} does not exist.",
                                 hint="Create the folder, or give another PATH for the emulator state file.")
            self.state = TenantState.from_dict(demo_state())
            self.state.save(self.path)
        else:
            self.state = TenantState.load(self.path)
        self.dirty = False
        self.saves = 0
        self._last_save = time.monotonic()
        self._interval = MIN_SAVE_INTERVAL_S
        self.app: Starlette = create_app(self.state, faults=faults, on_write=self._on_write)

    def _on_write(self) -> None:
        self.dirty = True
        self.maybe_save()

    def maybe_save(self) -> None:
        """Save pending writes if the save interval has passed since the last save (coalescing)."""
        if self.dirty and time.monotonic() - self._last_save >= self._interval:
            self.save()

    def save(self) -> None:
        """Write the state file now (atomically)."""
        start = time.monotonic()
        self.state.save(self.path)
        end = time.monotonic()
        self.saves += 1
        self.dirty = False
        self._last_save = end
        self._interval = max(MIN_SAVE_INTERVAL_S, 4 * (end - start))

    def flush(self) -> None:
        """Save if there are unsaved writes."""
        if self.dirty:
            self.save()

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> LocalTenant:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
