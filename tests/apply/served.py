"""Test helpers: a served emulator subprocess (`provision emulator serve --port 0`), the `provision` command,
and a 400-user workload whose manifest changes most users. Not pure: starts and stops processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

LISTENING = re.compile(r"listening on (http://\S+/v1\.0)")
PROVISION = [sys.executable, "-m", "provisioner"]
# Countries where the synthetic tenant's catalog sells a domestic Calling Plan; other users get Phone System only.
DOMESTIC = ("US", "GB", "CA")


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT/v1.0
    proc: subprocess.Popen[str]

    @property
    def root(self) -> str:
        return self.url.rsplit("/v1.0", 1)[0]

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.root}/_emulator/stats", timeout=10).json())


@contextmanager
def serve(state: Path, *args: str, timeout: float = 20) -> Iterator[Served]:
    """Serve `state` until the block ends (SIGTERM, then SIGKILL of this very process if it lingers)."""
    cmd = [*PROVISION, "emulator", "serve", str(state), "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    seen: list[str] = []
    url = None
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            m = LISTENING.search(line)
            if m:
                url = m.group(1)
                break
        if url is None:
            raise RuntimeError(f"the emulator did not start: {' '.join(cmd)}\n" + "\n".join(seen[-10:]))
        threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
        yield Served(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def provision(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PROVISION, *args], capture_output=True, text=True, timeout=timeout)


def country_of(upn: str) -> str:
    """The synthetic tenant names users `user000123.gb@contoso.com`."""
    return upn.split("@", 1)[0].rsplit(".", 1)[1].upper()


def workload(n_users: int, seed: int, folder: Path) -> tuple[Path, Path, dict[str, Any]]:
    """A synthetic tenant with room in every SKU, and a manifest that changes most of its users.

    Every user gets its country as usage location (2% have none yet: a PATCH before their licenses); users in
    US/GB/CA get the domestic Calling Plan (an add, or a swap from another plan: add and remove in one call);
    the others get Phone System (the add-on unless E5 already provides it). Returns (state, manifest, state dict).
    """
    from provisioner.emulator.demo import synthetic_state

    state = synthetic_state(n_users, seed)
    for sku in state["subscribedSkus"]:
        sku["prepaidUnits"]["enabled"] += n_users  # seats are not what these tests are about
    state_path = folder / "tenant.json"
    state_path.write_text(json.dumps(state))
    lines = [
        "apiVersion: provisioner/v1",
        "kind: TeamsVoiceLicensing",
        "policy:",
        "  maxRemovals: 100000",
        "users:",
    ]
    for u in sorted(state["users"], key=lambda u: u["userPrincipalName"]):
        c = country_of(u["userPrincipalName"])
        lines += [f"  - upn: {u['userPrincipalName']}", f"    usageLocation: {c}"]
        lines.append("    callingPlan: domestic" if c in DOMESTIC else "    phoneSystem: true")
    manifest = folder / "manifest.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    return state_path, manifest, state
