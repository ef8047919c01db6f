"""An emulated tenant backed by a state file: the app for `--tenant emulator:PATH` and for `serve`.

Impure (file I/O). Writes are persisted atomically (temp file + os.replace, so a kill -9 leaves either the
old or the new file, never a torn one) and coalesced: a 10,000-change apply is not 10,000 rewrites. Between
two saves, each write is first appended to a journal beside the file (`.NAME.journal`) before Graph's answer
goes out, as the real service never loses a write it confirmed: a process killed with `kill -9` leaves its
confirmed writes in the journal, and the next load replays them (each op is a whole new value, so replaying
one already saved changes nothing), saves, and empties it.

One process at a time: a tenant is one source of truth, and two processes each holding the file in memory
would each hand out the same free seat and overwrite the other's writes. A LocalTenant holds a lock on
`.NAME.lock` beside the file (POSIX only) from load to close; another process waits for it up to
LOCK_WAIT_S, then is refused with the holder's pid and command.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
from starlette.applications import Starlette

from provisioner.emulator.demo import demo_state
from provisioner.emulator.faults import FaultConfig
from provisioner.emulator.routes import create_app
from provisioner.emulator.state import StateError, TenantState

MIN_SAVE_INTERVAL_S = 0.5
LOCK_WAIT_S = 10.0

try:
    import fcntl
except ImportError:  # Windows: no lock (documented in the README's emulator differences)
    fcntl = None  # type: ignore[assignment]


class _ProcessLock:
    """An exclusive lock between processes on `lock_path`, with who holds it written inside.

    A POSIX record lock (lockf), owned by the process: a process never waits for itself (tests open one file
    twice to act as two runs, one after the other).
    """

    def __init__(self, lock_path: Path, state_path: Path, wait_s: float) -> None:
        self.path = lock_path
        self._fh: IO[str] | None = None
        if fcntl is None:
            return
        fh = lock_path.open("a+", encoding="utf-8")
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                holder = _holder(lock_path)
                if time.monotonic() >= deadline:
                    fh.close()
                    raise StateError(
                        f"{state_path}: in use by another process ({holder}); one process at a time serves a "
                        "tenant, as two would hand out the same seats and overwrite each other's writes.",
                        hint="Wait for it to finish or stop it; while `provision emulator serve` serves this "
                        "file, use its URL with --graph-url instead of --tenant emulator:PATH.",
                    ) from None
                if not told:
                    print(f"waiting for {state_path}: in use by another process ({holder})", file=sys.stderr,
                          flush=True)
                    told = True
                time.sleep(0.05)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}: {' '.join(sys.argv) or sys.executable}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the lock; the file stays (removing it would race a waiter)
            self._fh = None

    def __del__(self) -> None:  # a LocalTenant dropped without close() (tests): no lock, no open file left
        self.release()


def _holder(lock_path: Path) -> str:
    try:
        text = lock_path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "pid unknown"


class LocalTenant:
    """Load PATH (or create it from the demo tenant: `.created`), serve it as `.app`, persist writes.

    Coalescing: a write marks the state dirty and saves at once only when the last save is older than the
    save interval (0.5 s, or 4x the last save's duration for a big tenant, so saving stays a small share of
    the time); `flush()` / `close()` save whatever is pending.
    """

    def __init__(self, path: str | os.PathLike[str], *, faults: FaultConfig | None = None,
                 lock_wait_s: float = LOCK_WAIT_S) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise StateError(f"{self.path}: folder {self.path.parent} does not exist.",
                             hint="Create the folder, or give another PATH for the emulator state file.")
        self._lock = _ProcessLock(self.path.with_name(f".{self.path.name}.lock"), self.path, lock_wait_s)
        try:
            self._load(faults)
        except BaseException:
            self._lock.release()
            raise

    def _load(self, faults: FaultConfig | None) -> None:
        self.created = not self.path.exists()
        if self.created:
            self.state = TenantState.from_dict(demo_state())
            self.state.save(self.path)
        else:
            self.state = TenantState.load(self.path)
        self.journal_path = self.path.with_name(f".{self.path.name}.journal")
        self.dirty = False
        self.saves = 0
        self._journal: IO[str] | None = None
        self._last_save = time.monotonic()
        self._interval = MIN_SAVE_INTERVAL_S
        if self.created:
            self.journal_path.unlink(missing_ok=True)  # a journal left by a deleted file is not this tenant's
        self.replayed = self._replay()
        self.app: Starlette = create_app(self.state, faults=faults, on_write=self._on_write)

    def _replay(self) -> int:
        """Apply the writes a killed process confirmed but did not save; save them and empty the journal."""
        try:
            # Bytes, split on line ends only: a torn last line may end inside a UTF-8 character (that line alone is
            # skipped), and a name may hold U+2028, which str.splitlines() would split on.
            lines = self.journal_path.read_bytes().splitlines()
        except FileNotFoundError:
            return 0
        done = 0
        for line in lines:
            op = _journal_op(line, self.state)
            if op is None:
                continue  # a torn last line (never confirmed), or not one this emulator wrote: skipped
            kind, user, value = op
            if kind == "fields":
                self.state.set_user_fields(user, value)
            else:
                self.state.set_direct_licenses(user, value)
            done += 1
        if done:
            self.save()
        else:
            self.journal_path.unlink(missing_ok=True)
        return done

    def _on_write(self, op: tuple[str, str, Any]) -> None:
        if self._journal is None:
            self._journal = self.journal_path.open("a", encoding="utf-8")
        self._journal.write(orjson.dumps(op).decode() + "\n")  # compact JSON; non-ASCII as UTF-8 (see _replay)
        self._journal.flush()  # in the OS's hands: a killed process loses nothing (a crashed machine may)
        self.dirty = True
        self.maybe_save()

    def maybe_save(self) -> None:
        """Save pending writes if the save interval has passed since the last save (coalescing)."""
        if self.dirty and time.monotonic() - self._last_save >= self._interval:
            self.save()

    def save(self) -> None:
        """Write the state file now (atomically), then empty the journal (its writes are in the file)."""
        start = time.monotonic()
        self.state.save(self.path)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self.journal_path.unlink(missing_ok=True)
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
        try:
            self.flush()
        finally:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
            self._lock.release()

    def __enter__(self) -> LocalTenant:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


_FIELDS = {"usageLocation": (str, type(None)), "displayName": (str, type(None)), "accountEnabled": (bool,)}


def _journal_op(line: bytes, state: TenantState) -> tuple[str, Any, dict[str, Any]] | None:
    """One journal line as (kind, user, value), or None when it is not a write this emulator journalled (or
    not all of one: torn, even inside a UTF-8 character)."""
    try:
        kind, user_id, value = json.loads(line)
    except (ValueError, TypeError):  # UnicodeDecodeError is a ValueError
        return None
    user = state.user_by_id.get(str(user_id).lower()) if isinstance(user_id, str) else None
    if user is None or not isinstance(value, dict):
        return None
    if kind == "fields" and all(k in _FIELDS and isinstance(v, _FIELDS[k]) for k, v in value.items()):
        return kind, user, value
    if kind == "licenses" and all(
        k in state.sku_by_id and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in value.items()
    ):
        return kind, user, value
    return None
