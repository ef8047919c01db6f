"""Load big manifests in a forked child while the parent goes on (importing the Graph stack, ~0.3 s). Impure.

`plan` needs the manifests and the Graph SDK; both cost CPU, the SDK's import a fixed ~0.3 s and a
100,000-user manifest ~0.5 s, and the machine has a second core. So the parent forks a child that runs
`load_desired` and sends the result back through a pipe, while the parent imports what it needs next;
then it rebuilds `Desired` (~0.07 s at 100,000 users: the users go as columns, which marshal writes and
reads in C, where pickling them costs more than loading the file).

Only an accelerator, never a second behaviour: the child reports nothing itself. When it fails in any way
(a manifest error, a crash, a payload that does not decode), the caller loads in-process, as it always did,
so every message, exit code and traceback is the in-process one. Forking happens only where it is safe
(provisioner/forked.py) and pays: for manifests of at least MIN_BYTES.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Any

from provisioner import forked
from provisioner.model.desired import Desired, DesiredUser, desired_users

# Below this many bytes of manifests, loading takes a few milliseconds: not worth a process.
MIN_BYTES = 256 * 1024


def start(paths: Sequence[str], catalog: Any | None) -> Pending | None:
    """Fork a child loading `paths` (against `catalog`, else the built-in or a manifest's own, as
    load_desired(..., for_plan=True) does); None when it is not worth it or not safe here."""
    if not forked.can_fork() or _size(paths) < MIN_BYTES:
        return None
    r, w = os.pipe()

    def work() -> None:
        os.close(r)
        data = _encode(_load(paths, catalog))
        with os.fdopen(w, "wb") as out:
            out.write(data)

    try:
        pid = forked.fork(work)
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    if pid is None:
        os.close(r)
        return None
    return Pending(pid, r)


@dataclass
class Pending:
    pid: int
    fd: int
    used: bool = False  # the child's Desired was used (not a fallback)
    done: bool = False  # reaped, and its pipe closed

    def result(self) -> Desired | None:
        """The child's Desired, or None when it failed (the caller then loads in-process)."""
        try:
            with os.fdopen(self.fd, "rb") as f:
                data = f.read()
        except BaseException:
            self.fd = -1  # closed by the `with`: its number may be reused by now
            self.cancel()  # e.g. Ctrl-C sent to this process alone: do not wait for the child to finish
            raise
        status = self._reap()
        if status != 0 or not data:
            return None
        try:
            desired = _decode(data)
        except Exception:
            return None
        self.used = True
        return desired

    def cancel(self) -> None:
        """Stop the child and reap it, its result unread (the caller is leaving, e.g. on an error)."""
        if self.done:
            return
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.done = True
        forked.reap(self.pid, kill=True)

    def _reap(self) -> int:
        self.done = True
        return forked.reap(self.pid)


def _size(paths: Sequence[str]) -> int:
    from provisioner.manifest.files import find_files

    files, issues = find_files(paths)
    if issues:
        return 0  # load in-process: it reports them
    total = 0
    for f in files:
        try:
            total += os.stat(f).st_size
        except OSError:
            return 0
    return total


def _load(paths: Sequence[str], catalog: Any | None) -> Desired:
    from provisioner.manifest import load_desired

    return load_desired(list(paths), catalog=catalog, for_plan=True)


_FIELDS = len(DesiredUser._fields)


def _encode(desired: Desired) -> bytes:
    from provisioner.catalog.loader import builtin_doc_if_read

    users = desired.users
    columns = [list(map(itemgetter(i), users)) for i in range(_FIELDS)]
    sources = columns[1]
    columns[1:2] = [list(map(itemgetter(0), sources)), list(map(itemgetter(1), sources))]
    head = (replace(desired, users=()), builtin_doc_if_read())  # the built-in catalog, which the parent needs too
    return pickle.dumps((head, marshal.dumps(columns)), protocol=pickle.HIGHEST_PROTOCOL)


def _decode(data: bytes) -> Desired:
    from provisioner.catalog.loader import adopt_builtin_doc

    (head, catalog_doc), packed = pickle.loads(data)
    upns, files, lines, *rest = marshal.loads(packed)
    if not isinstance(head, Desired) or len(rest) != _FIELDS - 2 or not isinstance(catalog_doc, dict | None):
        raise ValueError("not a Desired")
    desired = replace(head, users=tuple(desired_users(upns, files, lines, *rest)))
    if catalog_doc is not None:
        adopt_builtin_doc(catalog_doc)  # the parent does not parse the file (nor import the YAML reader) again
    return desired
