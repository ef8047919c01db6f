"""A forked helper process that runs one function and exits: what manifest/background.py (loading manifests
beside the SDK's import) and graph/pages.py (decoding a full read's pages beside their fetching) share. Impure.

Only where it is safe: on Linux (fork without exec is unsafe on macOS, absent on Windows), in a process with
no other thread (a lock another thread holds would stay held forever in the child), and with SIGCHLD not
ignored (the kernel would then reap the child itself, and its exit status would be lost).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable


def can_fork() -> bool:
    return (
        sys.platform == "linux"
        and hasattr(os, "fork")
        and threading.active_count() == 1
        and signal.getsignal(signal.SIGCHLD) is not signal.SIG_IGN
    )


def fork(work: Callable[[], object]) -> int | None:
    """Fork a child that runs `work()` and exits, 0 when it returned and 1 when it raised (it reports nothing:
    the parent judges by what it receives); return its pid, or None when fork failed.

    Signals wait until the child has its own dispositions: a Ctrl-C landing between the fork and the child's
    `try` would raise KeyboardInterrupt into the parent's code, running in the child. In the child Ctrl-C
    (sent to the whole process group) ends it at once, never as a Python exception; the parent gets its own
    KeyboardInterrupt. The child's collector is off: it builds no cycles, and exits when done.
    """
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return None
    if pid == 0:  # the child: never returns
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            gc.disable()
            work()
            code = 0
        except BaseException:
            pass
        finally:
            os._exit(code)
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a Ctrl-C that came meanwhile is raised here
    except BaseException:
        reap(pid, kill=True)  # the caller never learns the pid: stop the child here
        raise
    return pid


def reap(pid: int, *, kill: bool = False) -> int:
    """Wait for the child (killed first when `kill`) and return its wait status; 0 when someone else reaped
    it (a SIGCHLD handler that waits): the caller judges by what it received. A child someone else reaped is
    not sent the signal: its pid may belong to another process by now."""
    try:
        if kill:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0
