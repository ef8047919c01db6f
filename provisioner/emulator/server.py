"""`provision emulator serve`: the emulator app over HTTP with uvicorn, persisting writes to the state file.

Impure (socket, file I/O, stdout). Prints exactly `listening on http://HOST:PORT/v1.0` (the bound port, even
for port 0) once the socket accepts connections; flushes pending writes every ~0.5 s and on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn

from provisioner.emulator.faults import FaultConfig
from provisioner.emulator.local import MIN_SAVE_INTERVAL_S, LocalTenant

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves, so port 0 resolves to a real port before uvicorn starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, a response written in two parts (head, then body)
    # waits for the client's delayed ACK, ~40 ms on every keep-alive request after the first.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host.strip("[]"), port))
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn with a ready line and a periodic flush of the tenant's pending writes."""

    def __init__(self, config: uvicorn.Config, tenant: LocalTenant, url: str) -> None:
        super().__init__(config)
        self.tenant = tenant
        self.url = url
        self._flusher: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """As uvicorn's, except that a stop asked by SIGINT or SIGTERM ends `serve` with exit 0 (the contract's
        codes are 0/1/2/64 for every command): uvicorn re-raises the signal it caught once it has shut down,
        which ended the process with 130 or 143."""
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(f"listening on {self.url}", flush=True)
            self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while not self.should_exit:
            await asyncio.sleep(MIN_SAVE_INTERVAL_S)
            self.tenant.maybe_save()  # respects the tenant's interval: a big tenant is not rewritten 2x/s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await super().shutdown(sockets=sockets)
        # Save here, not only in serve()'s `finally`: after a graceful shutdown uvicorn re-raises the signal
        # it caught, and a SIGTERM then ends the process before any `finally` runs.
        self.tenant.close()


def serve(path: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8765,
          faults: FaultConfig | None = None, **uvicorn_options: Any) -> None:
    """Serve the state file at `path` until interrupted; save pending writes on the way out."""
    tenant = LocalTenant(path, faults=faults)
    if tenant.created:
        print(f"created demo tenant at {path}", file=sys.stderr, flush=True)
    sock = _bind(host, port)
    actual = sock.getsockname()[1]
    url = f"http://{_url_host(host)}:{actual}/v1.0"
    config = uvicorn.Config(tenant.app, log_level="warning", access_log=False, lifespan="off",
                            **uvicorn_options)
    server = _Server(config, tenant, url)
    try:
        server.run(sockets=[sock])
    finally:
        tenant.close()
        sock.close()
