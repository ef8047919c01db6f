"""A fault-injecting HTTP/1.1 proxy in front of the emulator's ASGI app, for the fault suite. Test-only I/O.

It listens on loopback in a background thread, parses each request itself (so it can drop a connection
without answering), and forwards to `create_app(state)` in process through httpx.ASGITransport, so the
test can read the emulator's final state directly. What it can do, decided per request by `Injection`s:

* `ThrottleStorm`  — for a time window (from the first request, or from the first write), a share of
  requests and of each $batch's sub-requests get Graph's 429 + Retry-After; a throttled sub-request's
  dependents get 424, as Graph answers them;
* `ErrorBurst`     — N consecutive requests answered 503 (with and without Retry-After);
* `LatencySpike`   — N consecutive requests held for D seconds before being forwarded;
* `DropMidBatch`   — a `$batch` carrying writes is forwarded (the writes happen) and then the socket is
  closed without any response: the client cannot know what was done.

Every decision is counted in `Proxy.injected`, which the suite prints. `Proxy.on_write_forwarded` is called
once a write batch has run and before its answer is sent: the kill -9 cases use it to kill mid-answer.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found",
            424: "Failed Dependency", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}


def graph_error(status: int, code: str, message: str) -> dict[str, Any]:
    """Graph's error body (what the real service and the emulator answer)."""
    return {"error": {"code": code, "message": message, "innerError": {
        "request-id": str(uuid.uuid4()), "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")}}}


@dataclass
class Request:
    method: str
    target: str  # path and query, as sent
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def is_batch(self) -> bool:
        return self.method == "POST" and self.path.endswith("/$batch")

    @property
    def is_write(self) -> bool:
        return self.method in {"POST", "PATCH"} and not self.path.startswith("/_emulator")


@dataclass
class Verdict:
    """What the proxy does with one request. Only one of status / drop applies; delay adds to either."""

    delay_s: float = 0.0
    status: int | None = None  # answer this status itself instead of forwarding
    retry_after: int | None = None
    drop_after_forward: bool = False
    throttle_share: float = 0.0  # for a $batch: share of sub-requests to answer 429 themselves
    source: str = ""  # the injection's name, for the counts


class Injection:
    """Decides, per request, whether and how to interfere. `n` is the 1-based index of the request."""

    name = "injection"

    def decide(self, req: Request, n: int, elapsed: float) -> Verdict | None:
        raise NotImplementedError


@dataclass
class ThrottleStorm(Injection):
    """A window of `duration_s` seconds, opened by the first request (or, with `on_writes`, by the first
    $batch carrying writes), in which `share` of requests and of $batch sub-requests answer 429."""

    duration_s: float = 3.0
    share: float = 0.5
    retry_after: int = 1
    seed: int = 0
    on_writes: bool = False
    name = "throttle storm"

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._opened: float | None = None

    def decide(self, req: Request, n: int, elapsed: float) -> Verdict | None:
        now = time.monotonic()
        if self._opened is None and (not self.on_writes or _carries_writes(req)):
            self._opened = now
        if self._opened is None or now - self._opened >= self.duration_s:
            return None
        if req.is_batch:  # Graph throttles each sub-request on its own (the proxy draws which)
            return Verdict(throttle_share=self.share, retry_after=self.retry_after)
        if self._rng.random() < self.share:
            return Verdict(status=429, retry_after=self.retry_after)
        return None


def _carries_writes(req: Request) -> bool:
    return (req.is_batch and (b'"POST"' in req.body or b'"PATCH"' in req.body)) or (
        req.is_write and not req.is_batch)


@dataclass
class ErrorBurst(Injection):
    first: int = 3  # the request index where the burst starts
    count: int = 4
    name = "503 burst"

    def decide(self, req: Request, n: int, elapsed: float) -> Verdict | None:
        if self.first <= n < self.first + self.count:
            return Verdict(status=503, retry_after=1 if n % 2 else None)
        return None


@dataclass
class LatencySpike(Injection):
    first: int = 2
    count: int = 3
    delay_s: float = 1.5
    name = "latency spike"

    def decide(self, req: Request, n: int, elapsed: float) -> Verdict | None:
        if self.first <= n < self.first + self.count:
            return Verdict(delay_s=self.delay_s)
        return None


@dataclass
class DropMidBatch(Injection):
    which: tuple[int, ...] = (1,)  # which write-carrying $batch requests (1-based) lose their answer
    seen: int = 0
    name = "connection dropped mid-batch"

    def decide(self, req: Request, n: int, elapsed: float) -> Verdict | None:
        if not (req.is_batch and _carries_writes(req)):
            return None
        self.seen += 1
        return Verdict(drop_after_forward=True) if self.seen in self.which else None


@dataclass
class Proxy:
    """Serve `app` on 127.0.0.1:<free port> from a daemon thread, applying `injections` in order."""

    app: Any
    injections: list[Injection] = field(default_factory=list)
    seed: int = 0
    latency_s: float = 0.0  # a steady delay on every request
    batch_latency_s: float = 0.0  # a steady delay on each $batch (stretches the writes so a kill lands mid-run)
    on_write_forwarded: Callable[[int], None] | None = None  # called with n after the n-th write batch ran
    injected: Counter[str] = field(default_factory=Counter)
    forwarded: int = 0
    write_batches: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._n = 0
        self._t0: float | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    def __enter__(self) -> Proxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://emulator")
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
        await self._client.aclose()

    # -- one connection ---------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                req = await _read_request(reader)
                if req is None:
                    break
                keep = await self._serve(req, writer)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()

    async def _serve(self, req: Request, writer: asyncio.StreamWriter) -> bool:
        if req.path.startswith("/_emulator"):
            status, headers, body = await self._forward(req)
            await _write(writer, status, headers, body)
            return True
        self._n += 1
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        elapsed = now - self._t0
        verdict = Verdict()
        for inj in self.injections:
            v = inj.decide(req, self._n, elapsed)
            if v is not None:
                verdict = v
                verdict.source = inj.name
                self.injected[_label(inj, v)] += 1
                break
        delay = self.latency_s + verdict.delay_s + (self.batch_latency_s if req.is_batch else 0.0)
        if delay:
            await asyncio.sleep(delay)
        if verdict.status is not None:
            headers = [("Retry-After", str(verdict.retry_after))] if verdict.retry_after is not None else []
            code = "TooManyRequests" if verdict.status == 429 else "serviceNotAvailable"
            await _write_json(writer, verdict.status, graph_error(verdict.status, code, "Injected by the fault proxy."),
                              headers)
            return True
        if verdict.throttle_share and req.is_batch:
            status, headers, body = await self._throttled_batch(req, verdict)
        else:
            status, headers, body = await self._forward(req)
        if req.is_batch and _carries_writes(req):
            self.write_batches += 1
            if self.on_write_forwarded is not None:
                self.on_write_forwarded(self.write_batches)  # e.g. kill -9 the client while its answer is in flight
        if verdict.drop_after_forward:
            writer.transport.abort()  # the work is done; the answer never arrives
            return False
        await _write(writer, status, headers, body)
        return True

    async def _forward(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        self.forwarded += 1
        hop = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
        r = await self._client.request(req.method, req.target, content=req.body,
                                       headers=[(k, v) for k, v in req.headers if k.lower() not in hop])
        body = await r.aread()
        out = [(k, v) for k, v in r.headers.multi_items() if k.lower() not in hop | {"content-encoding"}]
        return r.status_code, out, body

    async def _throttled_batch(self, req: Request, verdict: Verdict) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer a share of the sub-requests 429 (and their dependents 424); forward the rest as one batch."""
        try:
            batch = json.loads(req.body)
            subs = list(batch["requests"])
        except (ValueError, KeyError, TypeError):
            return await self._forward(req)
        throttled = {s["id"] for s in subs if self._rng.random() < verdict.throttle_share}
        failed_dep: set[str] = set()
        changed = True
        while changed:  # dependents of anything not forwarded fail with 424, as Graph does
            changed = False
            for s in subs:
                deps = set(s.get("dependsOn") or [])
                if s["id"] not in throttled | failed_dep and deps & (throttled | failed_dep):
                    failed_dep.add(s["id"])
                    changed = True
        self.injected[f"{verdict.source}: 429 sub-requests"] += len(throttled)
        if failed_dep:
            self.injected[f"{verdict.source}: 424 dependents"] += len(failed_dep)
        responses: list[dict[str, Any]] = []
        rest = [s for s in subs if s["id"] not in throttled | failed_dep]
        if rest:
            sub_req = Request(req.method, req.target, req.headers, json.dumps({"requests": rest}).encode())
            status, _headers, body = await self._forward(sub_req)
            if status != 200:
                return status, _headers, body
            responses.extend(json.loads(body)["responses"])
        for sid in sorted(throttled):
            responses.append({"id": sid, "status": 429,
                              "headers": {"Retry-After": str(verdict.retry_after or 1),
                                          "Content-Type": "application/json"},
                              "body": graph_error(429, "TooManyRequests", "Injected by the fault proxy.")})
        for sid in sorted(failed_dep):
            responses.append({"id": sid, "status": 424, "headers": {"Content-Type": "application/json"},
                              "body": graph_error(424, "failedDependency", "A dependency failed.")})
        return 200, [("Content-Type", "application/json")], json.dumps({"responses": responses}).encode()


def _label(inj: Injection, v: Verdict) -> str:
    if v.status is not None:
        return f"{inj.name}: {v.status} answers"
    if v.drop_after_forward:
        return f"{inj.name}: batches executed then dropped"
    if v.throttle_share:
        return f"{inj.name}: $batch calls hit"
    if v.delay_s:
        return f"{inj.name}: requests held {v.delay_s:g}s"
    return inj.name


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _version = line.decode("latin-1").split(" ", 2)
    headers: list[tuple[str, str]] = []
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))
    hmap = {k.lower(): v for k, v in headers}
    body = b""
    if "content-length" in hmap:
        body = await reader.readexactly(int(hmap["content-length"]))
    elif hmap.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readline()
                break
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        body = b"".join(chunks)
    return Request(method, target, headers, body)


async def _write_json(writer: asyncio.StreamWriter, status: int, body: Any, headers: list[tuple[str, str]]) -> None:
    await _write(writer, status, [("Content-Type", "application/json"), *headers], json.dumps(body).encode())


async def _write(writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    head += [f"{k}: {v}" for k, v in headers if k.lower() not in {"content-length", "transfer-encoding"}]
    head.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
