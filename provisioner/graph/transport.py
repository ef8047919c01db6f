"""Sending requests through msgraph-sdk's request adapter and middleware, taking answers as raw bytes.

Impure (network). Requests are kiota RequestInformation objects (from the SDK's request builders or built
here for nextLinks and `$batch`), sent with `send_primitive_async` and a NativeResponseHandler, so we get
status, headers and body bytes and parse them with orjson (never kiota models: msgraph-sdk-notes §5).
This layer owns every retry of a top-level request (retry.py); the RetryHandler middleware is off.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from kiota_abstractions.authentication import AnonymousAuthenticationProvider, AuthenticationProvider
from kiota_abstractions.method import Method
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.graph_request_adapter import options as graph_default_options
from msgraph_core import GraphClientFactory

from provisioner.errors import AuthError, GraphError, ProvisionerError
from provisioner.graph import failures
from provisioner.graph.auth import CredentialChoice, auth_error_from, scrub
from provisioner.graph.lean import settle
from provisioner.graph.retry import RetryPolicy, parse_retry_after

settle()  # httpx is imported: its CLI's stand-in (graph/__init__.py) is `httpx._main`, as the real one would be

TIMEOUT = httpx.Timeout(100.0, connect=30.0)  # the SDK's own defaults


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    content: bytes
    url: str

    @property
    def request_id(self) -> str | None:
        return self.headers.get("request-id") or self.headers.get("client-request-id")

    def json(self) -> Any:
        return orjson.loads(self.content) if self.content else None


def make_client(
    base_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    auth_provider: AuthenticationProvider | None = None,
    max_connections: int = 16,
) -> GraphServiceClient:
    """A GraphServiceClient on `base_url` with the SDK's default middleware, its RetryHandler switched off."""
    opts = dict(graph_default_options)
    opts[RetryHandlerOption.get_key()] = RetryHandlerOption(delay=0, max_retries=0, should_retry=False)
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    if transport is None and base_url.startswith("http://"):
        # Plain HTTP (connect allows it on loopback only: a served emulator): no TLS, so no CA bundle to load.
        # httpx's default transport builds a verifying SSL context from certifi's bundle anyway, ~0.1 s of each
        # command's start; with verify=False the unused context is empty. Env proxies do not apply to loopback.
        transport = httpx.AsyncHTTPTransport(verify=False, limits=limits)
    raw = httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, transport=transport, limits=limits)
    http = GraphClientFactory.create_with_default_middleware(client=raw, options=opts)
    adapter = GraphRequestAdapter(auth_provider or AnonymousAuthenticationProvider(), client=http)
    adapter.base_url = (
        base_url  # httpx adds a trailing slash to base_url: without this, URLs get `/v1.0//users`
    )
    return GraphServiceClient(request_adapter=adapter)


class Transport:
    """Send one request (with our retries) or one `$batch`, through the SDK's adapter."""

    def __init__(
        self,
        client: GraphServiceClient,
        base_url: str,
        *,
        policy: RetryPolicy | None = None,
        debug: bool = False,
        credential: Any = None,
        choice: CredentialChoice | None = None,
        authority: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.adapter = client.request_adapter
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self.debug = debug
        self.credential = credential
        self.choice = choice
        self.authority = authority  # the sign-in host the credential uses (named when unreachable)
        self.rng = rng or random.Random()
        self.round_trips = 0  # HTTP requests actually sent (for --debug summaries and tests)

    def absolute(self, url: str) -> str:
        return url if url.startswith(("http://", "https://")) else f"{self.base_url}{url}"

    def log(self, line: str) -> None:
        if self.debug:
            print(f"graph: {line}", file=sys.stderr, flush=True)

    async def _send_once(self, ri: RequestInformation, method: str, url: str) -> Answer:
        ri.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        started = time.monotonic()
        self.round_trips += 1
        try:
            resp: httpx.Response | None = await self.adapter.send_primitive_async(ri, "bytes", None)
        except ProvisionerError:
            raise
        except httpx.TransportError:
            raise
        except Exception as exc:
            # Credential failures surface here, from the auth provider (azure-identity), before any request.
            if self.choice is not None and _is_auth_failure(exc):
                # The full azure-identity text (each attempted credential) only with --debug, scrubbed.
                self.log(f"sign-in failed: {scrub(' '.join(str(exc).split()), self.choice.env)}")
                raise auth_error_from(exc, self.choice, self.authority) from None
            raise
        if resp is None:  # the native response handler always hands back the response; be explicit anyway
            raise GraphError("Graph gave no response", method=method, url=url)
        answer = Answer(resp.status_code, resp.headers, resp.content, str(resp.request.url))
        # httpx's response and its (read, closed) stream refer to each other: a cycle only the cyclic collector
        # frees, with the whole body in it, and planning keeps the collector off. Cut it: the body is freed as
        # soon as the Answer is (100 pages of 600 KB held to the end of a 100,000-user read, otherwise).
        resp.stream = httpx.ByteStream(b"")
        ms = (time.monotonic() - started) * 1000
        rid = f" request-id {answer.request_id}" if answer.request_id else ""
        self.log(f"{method} {failures.display_url(answer.url)} -> {answer.status} in {ms:.0f} ms{rid}")
        return answer

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool = True,
        ri: RequestInformation | None = None,
    ) -> Answer:
        """Send and retry per policy; return a 2xx answer or raise GraphError / ThrottledError / AuthError."""
        full = self.absolute(url)
        content = orjson.dumps(body) if body is not None else None
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            request = ri if (ri is not None and attempt == 1) else None
            if request is None:
                request = RequestInformation()
                request.http_method = Method[method.upper()]
                request.url = full
            for k, v in (headers or {}).items():
                request.headers.try_add(k, v)
            if content is not None:
                request.headers.try_add("Content-Type", "application/json")
                request.content = content
            try:
                answer = await self._send_once(request, method, full)
            except httpx.TransportError as exc:
                wait = self.policy.delay(attempt, None, self.rng)
                if (
                    idempotent
                    and attempt < 3
                    and self.policy.may_retry(attempt, wait, time.monotonic() - started)
                ):
                    self.log(
                        f"{method} {failures.display_url(full)}: {type(exc).__name__}; retrying in {wait:.1f} s"
                    )
                    await asyncio.sleep(wait)
                    continue
                raise failures.connection_error(exc, method=method, url=full) from None
            if answer.status < 400:
                return answer
            if answer.status == 401 and self.choice is not None:
                err = failures.from_response(
                    answer.status, answer.headers, answer.content, method=method, url=answer.url
                )
                rid = f" (request-id {err.request_id})" if err.request_id else ""
                raise AuthError(f"Graph rejected the token: {err.graph_message}{rid}", hint=err.hint)
            if self.policy.is_retryable(answer.status, idempotent=idempotent):
                wait = self.policy.delay(attempt, parse_retry_after(answer.headers), self.rng)
                if self.policy.may_retry(attempt, wait, time.monotonic() - started):
                    self.log(
                        f"{method} {failures.display_url(answer.url)}: HTTP {answer.status}; "
                        f"retrying in {wait:.1f} s"
                    )
                    await asyncio.sleep(wait)
                    continue
            raise failures.from_response(
                answer.status, answer.headers, answer.content, method=method, url=answer.url
            )

    async def get_json(
        self, url: str, *, headers: Mapping[str, str] | None = None, ri: RequestInformation | None = None
    ) -> Any:
        answer = await self.send("GET", url, headers=headers, ri=ri)
        return answer.json()

    async def batch(
        self, requests: list[dict[str, Any]], *, idempotent: bool = False
    ) -> dict[str, dict[str, Any]]:
        """POST one `$batch` (≤ 20 requests); return the sub-responses by id. A whole-batch 429/503/504 is
        retried here (Graph ran none of it), and a 500/502 too when every request in it is `idempotent`;
        sub-request statuses are the caller's to handle."""
        if not requests:
            return {}
        answer = await self.send("POST", "/$batch", body={"requests": requests}, idempotent=idempotent)
        data = answer.json() or {}
        out = {str(r.get("id")): r for r in data.get("responses") or ()}
        for r in out.values():  # sub-responses often carry no request-id: the batch's is the one to quote
            r["batchRequestId"] = answer.request_id
        missing = [r["id"] for r in requests if r["id"] not in out]
        if missing:
            raise GraphError(
                f"the $batch answer lacks responses for request ids {', '.join(missing[:5])}",
                status=answer.status,
                request_id=answer.request_id,
                method="POST",
                url=self.absolute("/$batch"),
            )
        return out

    async def close(self) -> None:
        http = getattr(self.adapter, "_http_client", None)
        if http is not None:
            await http.aclose()
        if self.credential is not None and hasattr(self.credential, "close"):
            await self.credential.close()


def _is_auth_failure(exc: BaseException) -> bool:
    """True for azure-core/azure-identity errors: Graph requests go through httpx, so an AzureError (token
    refused, sign-in host unreachable, no credential available) can only come from getting the token."""
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(
        names & {"AzureError", "ClientAuthenticationError", "CredentialUnavailableError", "AuthError"}
    )
