"""Test helpers for tests/graph: fake credential endpoints on loopback (Entra over https with a throwaway
self-signed certificate, GitHub's OIDC token service over http), emulator stats, and a served emulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx


def emulator_stats(app: Any) -> dict[str, Any]:
    """GET /_emulator/stats from an in-process emulator app."""

    async def get() -> dict[str, Any]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        ) as c:
            return (await c.get("/_emulator/stats")).json()

    return asyncio.run(get())


def reset_stats(app: Any) -> None:
    async def post() -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        ) as c:
            await c.post("/_emulator/stats/reset")

    asyncio.run(post())


def self_signed(tmp: Path, rsa_key: bool = False, stem: str = "entra") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files), valid for a day (RSA for app certificates)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    key: Any = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{stem}.pem", tmp / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class FakeEndpoints:
    """Records every request; answers token requests as Entra would (or refuses them, echoing the secret)."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.requests: list[dict[str, Any]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # GitHub Actions' OIDC token service, or a managed identity endpoint
                fake.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
                q = parse_qs(urlsplit(self.path).query)
                if self.path.startswith(
                    "/msi"
                ):  # App Service / Functions managed identity (IDENTITY_ENDPOINT)
                    if self.headers.get("X-IDENTITY-HEADER") != "msi-secret-header":
                        self._reply(401, {"error": "bad header"})
                        return
                    self._reply(200, {"access_token": "issued-access-token", "expires_on": str(int(time.time()) + 3600),
                                      "resource": q.get("resource", [""])[0], "token_type": "Bearer"})  # fmt: skip
                    return
                if self.headers.get("Authorization") != "bearer gh-request-token" or q.get("audience") != [
                    "api://AzureADTokenExchange"
                ]:
                    self._reply(403, {"message": "bad token request"})
                    return
                self._reply(
                    200, {"value": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOngvcHJvdmlzaW9uZXIifQ.c2ln"}
                )

            def do_POST(self) -> None:  # Entra's token endpoint
                n = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}
                fake.requests.append({"method": "POST", "path": self.path, "form": form})
                if fake.refuse:
                    echoed = form.get("client_secret") or form.get("client_assertion") or ""
                    self._reply(401, {
                        "error": "invalid_client",
                        "error_description": f"AADSTS7000215: Invalid client secret provided: {echoed}",
                    })  # fmt: skip
                    return
                self._reply(
                    200, {"token_type": "Bearer", "expires_in": 3600, "access_token": "issued-access-token"}
                )

        return H


@contextmanager
def serve_fake(fake: FakeEndpoints, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Serve `fake` on 127.0.0.1 (https when `tls` is given); yields "127.0.0.1:PORT"."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def served_emulator(path: Path, *args: str, timeout: float = 30.0) -> Iterator[str]:
    """`provision emulator serve PATH --port 0 ARGS` in a subprocess; yields its base URL (…/v1.0)."""
    cmd = [sys.executable, "-m", "provisioner", "emulator", "serve", str(path), "--port", "0", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        url = _await_ready(proc, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _await_ready(proc: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("listening on "):
                result.append(line.split("listening on ", 1)[1].strip())
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    if not result:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"the emulator did not start within {timeout} s: {err[-2000:]}")
    return result[0]


GRAPH_CODES = {
    500: "generalException",
    502: "BadGateway",
    503: "serviceNotAvailable",
    403: "Authorization_RequestDenied",
    429: "TooManyRequests",
}


class FlakyApp:
    """An ASGI wrapper answering the first N requests to a path with a Graph error (500, 502, 503, 403 ...).

    The emulator injects 429 and 503 only; this adds the other failures Graph is known for, test-side.
    """

    def __init__(self, app: Any, fail_first: dict[str, int], status: int = 500) -> None:
        self.app = app
        self.fail_first = dict(fail_first)
        self.status = status
        self.failed = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and self.fail_first.get(path, 0) > 0:
            self.fail_first[path] -= 1
            self.failed += 1
            rid = f"flaky-{self.failed}"
            body = json.dumps({"error": {"code": GRAPH_CODES.get(self.status, "error"), "message": "Injected by the test.",
                                         "innerError": {"request-id": rid, "date": "2026-01-01T00:00:00"}}}).encode()  # fmt: skip
            await send({"type": "http.response.start", "status": self.status,
                        "headers": [(b"content-type", b"application/json"), (b"request-id", rid.encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class SubFlakyApp:
    """An ASGI wrapper that turns chosen `$batch` sub-responses into Graph errors, the first N times.

    fail: (method, url suffix) -> how many times that sub-request answers `status` instead of running.
    The sub-request is NOT passed to the emulator when it is failed (the state does not change).
    """

    def __init__(
        self, app: Any, fail: dict[tuple[str, str], int], status: int = 500, retry_after: str | None = None
    ) -> None:
        self.app = app
        self.fail = dict(fail)
        self.status = status
        self.retry_after = retry_after
        self.failed = 0

    def _pick(self, r: dict[str, Any]) -> bool:
        for (method, suffix), left in self.fail.items():
            if left > 0 and r["method"] == method and r["url"].endswith(suffix):
                self.fail[(method, suffix)] -= 1
                return True
        return False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope.get("path", "").endswith("/$batch"):
            await self.app(scope, receive, send)
            return
        raw = b""
        while True:
            msg = await receive()
            raw += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        body = json.loads(raw)
        injected = {r["id"] for r in body["requests"] if self._pick(r)}
        blocked: set[str] = set()  # Graph: dependents of a failed request answer 424 and do not run
        for r in body["requests"]:
            if r["id"] not in injected and set(r.get("dependsOn") or []) & (injected | blocked):
                blocked.add(r["id"])
        kept = [r for r in body["requests"] if r["id"] not in injected | blocked]
        answers: list[dict[str, Any]] = []
        if kept:
            sent = json.dumps({"requests": kept}).encode()
            replay = [{"type": "http.request", "body": sent, "more_body": False}]
            started: dict[str, Any] = {}
            chunks: list[bytes] = []

            async def rx() -> dict[str, Any]:
                return replay.pop(0) if replay else {"type": "http.disconnect"}

            async def tx(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    started.update(message)
                else:
                    chunks.append(message.get("body", b""))

            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(sent)).encode()))
            await self.app({**scope, "headers": headers}, rx, tx)
            if started.get("status") != 200:  # a whole-batch fault: pass it through untouched
                await send(started)
                await send({"type": "http.response.body", "body": b"".join(chunks)})
                return
            answers = json.loads(b"".join(chunks))["responses"]
        for rid in sorted(injected):
            self.failed += 1
            hdrs = {"Content-Type": "application/json"}
            if self.retry_after is not None:
                hdrs["Retry-After"] = self.retry_after
            answers.append({"id": rid, "status": self.status, "headers": hdrs,
                            "body": {"error": {"code": GRAPH_CODES.get(self.status, "error"), "message": "Injected by the test.",
                                               "innerError": {"request-id": f"sub-flaky-{self.failed}"}}}})  # fmt: skip
        for rid in sorted(blocked):
            answers.append({"id": rid, "status": 424, "headers": {"Content-Type": "application/json"},
                            "body": {"error": {"code": "FailedDependency", "message": "dependency failed"}}})  # fmt: skip
        data = json.dumps({"responses": answers}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"request-id", b"batch-rid")]})  # fmt: skip
        await send({"type": "http.response.body", "body": data})
