"""`provision emulator init|serve`: write an emulator state file, or serve one over HTTP. Thin CLI layer.

Library errors (a bad state file, a port in use) are raised as ProvisionerError; the CLI entry prints them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from provisioner.errors import ProvisionerError


def run(action: str, path: Path, users: int | None = None, seed: int = 0, host: str = "127.0.0.1",
        port: int = 8765, latency_ms: float = 0.0, throttle_rate: float = 0.0, error_rate: float = 0.0,
        retry_after: int = 1, lost_reply_rate: float = 0.0, rate_limit: float = 0.0, debug: bool = False) -> int:
    try:
        if action == "init":
            return _init(Path(path), users, seed)
        if action == "serve":
            return _serve(Path(path), host, port, latency_ms, throttle_rate, error_rate, seed, retry_after,
                          lost_reply_rate, rate_limit)
        raise ProvisionerError(f"unknown emulator action {action!r}; use `init` or `serve`.")
    except ProvisionerError as exc:
        if debug:
            raise
        # the same plain line the CLI entry point prints for a ProvisionerError (exit 1)
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _init(path: Path, users: int | None, seed: int) -> int:
    from provisioner.emulator.demo import demo_state, synthetic_state
    from provisioner.emulator.state import TenantState

    if path.is_dir():
        raise ProvisionerError(f"{path} is a folder; give a file path for the emulator state (e.g. {path}/tenant.json).")
    if not path.parent.is_dir():
        raise ProvisionerError(f"{path}: folder {path.parent} does not exist; create it first.")
    data = demo_state() if users is None else synthetic_state(users, seed)
    state = TenantState.from_dict(data)  # the same validation a later load does
    try:
        state.save(path)
    except OSError as exc:
        raise ProvisionerError(f"{path}: cannot write the emulator state file ({exc.strerror or exc}).") from exc
    kind = "demo tenant" if users is None else f"synthetic tenant (seed {seed})"
    print(f"wrote {kind} to {path}: {len(state.users)} users, {len(state.skus)} SKUs, "
          f"{len(state.groups)} group{'s' if len(state.groups) != 1 else ''}.", file=sys.stderr)
    return 0


def _serve(path: Path, host: str, port: int, latency_ms: float, throttle_rate: float, error_rate: float,
           seed: int, retry_after: int = 1, lost_reply_rate: float = 0.0, rate_limit: float = 0.0) -> int:
    from provisioner.emulator.faults import FaultConfig
    from provisioner.emulator.server import serve

    faults = FaultConfig(latency_ms=latency_ms, throttle_rate=throttle_rate, error_rate=error_rate, seed=seed,
                         retry_after_s=retry_after, lost_reply_rate=lost_reply_rate, rate_limit=rate_limit)
    try:
        serve(path, host=host, port=port, faults=faults)
    except OSError as exc:
        raise ProvisionerError(f"cannot listen on {host}:{port} ({exc.strerror or exc}).",
                               hint="Pick another --port, or --port 0 for a free one.") from exc
    return 0
