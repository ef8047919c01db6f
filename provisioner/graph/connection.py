"""`connect()` and TenantConnection: the synchronous face of the Graph package for plan, apply and export.

Impure. Each connection owns one asyncio event loop and runs the async reader/writer on it, so callers stay
synchronous. Tenants: `emulator:PATH` (in process through httpx.ASGITransport, no credential, writes saved
to PATH), a loopback --graph-url (a served emulator: no credential), or Microsoft Graph with azure-identity.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import sys
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from provisioner.errors import AuthError, GraphError
from provisioner.graph.auth import authority_for, contain_azure_logging, graph_scope, select_credential
from provisioner.graph.outcome import ActionOutcome
from provisioner.graph.retry import RetryPolicy
from provisioner.model.observed import Observed, Sku, TenantInfo, User
from provisioner.model.plan import Action

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
EMULATOR_BASE = "http://localhost/v1.0"
T = TypeVar("T")


def is_loopback(url: str) -> bool:
    """127.0.0.0/8, localhost or [::1]: a local (served emulator) Graph that needs no credential."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TenantConnection:
    """An open connection to one tenant. Use as a context manager; every method is synchronous."""

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: Any, local: Any = None) -> None:
        from provisioner.graph.reader import Reader
        from provisioner.graph.writer import Writer

        self._loop = loop
        self.transport = transport
        self.local = local  # the in-process emulator's LocalTenant, when tenant is emulator:PATH
        self.reader = Reader(transport)
        self.writer = Writer(transport, skus=lambda: self.reader.skus)
        self._closed = False

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("this tenant connection is closed")
        return self._loop.run_until_complete(coro)

    # -- reads -----------------------------------------------------------------------------------------
    def tenant_info(self) -> TenantInfo:
        return self._run(self.reader.tenant_info())

    def read_skus(self) -> tuple[Sku, ...]:
        return self._run(self.reader.read_skus())

    def read(
        self,
        upns: Iterable[str],
        managed_sku_ids: Callable[[tuple[Sku, ...]], Iterable[str]],
        include_all_managed: bool = True,
        strategy: str = "auto",
        count_pairs_for: Callable[[tuple[Sku, ...]], Iterable[str]] | None = None,
        count_countries: Iterable[str] = (),
    ) -> Observed:
        """The snapshot planning needs: org, SKUs, the named users that exist, and (if include_all_managed)
        every holder of a managed SKU. `strategy` forces "scan" or "filtered" (benchmarks, tests).

        Without include_all_managed, `count_pairs_for` (SKUs -> the Calling Plan SKU ids to count) asks for
        `Observed.holder_counts` instead of every holder: per (usage location, SKU) for the named users'
        countries and `count_countries`. The reader reads every holder anyway (complete_for_managed True)
        when that is as cheap, or when those countries do not account for every holder.
        """
        return self._run(
            self.reader.read(
                list(upns),
                managed_sku_ids,
                include_all_managed,
                strategy,
                count_pairs_for,
                list(count_countries),
            )
        )

    def read_users_by_id(self, ids: Iterable[str]) -> dict[str, User]:
        """Users by object id (`id in (...)` look-ups, 300 a round trip); ids that do not exist are absent."""
        return self._run(self.reader.users_by_id(list(ids)))

    def read_stale_inputs(self, ids: Iterable[str]) -> tuple[TenantInfo, dict[str, User], tuple[Sku, ...]]:
        """A saved plan's stale check in one go: (tenant, users by id, SKUs), ceil(ids / 300) round trips."""
        return self._run(self.reader.stale_inputs(list(ids)))

    def group_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Group id -> display name, for messages (`id in (...)` look-ups, 300 a round trip).

        Needs GroupMember.Read.All or Group.Read.All, beyond the least-privileged set: without it Graph answers
        403 and this raises a GraphError whose first line names that permission.
        """
        return self._run(self.reader.group_names(list(ids)))

    def read_users_by_upn(self, upns: Iterable[str]) -> dict[str, User]:
        return self._run(self.reader.users_by_upn(list(upns)))

    # -- writes ----------------------------------------------------------------------------------------
    def execute(
        self,
        actions: Sequence[Action],
        *,
        parallelism: int = 4,
        on_outcome: Callable[[ActionOutcome], None] | None = None,
    ) -> list[ActionOutcome]:
        try:
            return self._run(self.writer.execute(actions, parallelism=parallelism, on_outcome=on_outcome))
        finally:
            if self.local is not None:
                self.local.flush()

    # -- lifecycle -------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        try:
            self._loop.run_until_complete(self.transport.close())
        finally:
            self._closed = True
            self._loop.close()
            if self.local is not None:
                self.local.close()

    def __enter__(self) -> TenantConnection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def connect(
    tenant: str | None,
    graph_url: str | None = None,
    auth: str = "auto",
    debug: bool = False,
    *,
    env: Mapping[str, str] | None = None,
    policy: RetryPolicy | None = None,
    credential_options: Mapping[str, Any] | None = None,
) -> TenantConnection:
    """Open a connection (see the module docstring). Raises AuthError / GraphError with what to do.

    env: the environment to read credentials from (default os.environ); credential_options: passed to the
    azure-identity credential (e.g. connection_verify=CA_BUNDLE behind a TLS-inspecting proxy).
    """
    from provisioner.graph.transport import Transport, make_client

    env = dict(os.environ if env is None else env)
    loop = asyncio.new_event_loop()
    try:
        if tenant and tenant.startswith("emulator:"):
            if graph_url:
                raise GraphError(
                    f"--tenant {tenant} and --graph-url {graph_url} name two tenants",
                    hint="Give --tenant emulator:PATH for the in-process emulator, or --graph-url alone for a served one.",
                ).as_usage()
            return _emulator(tenant.removeprefix("emulator:"), loop, debug, policy)
        base = (graph_url or DEFAULT_GRAPH_URL).rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise GraphError(
                f"--graph-url {base!r} is not an http(s) URL",
                hint="Example: https://graph.microsoft.com/v1.0",
            ).as_usage()
        if is_loopback(base):
            client = make_client(base)
            return TenantConnection(loop, Transport(client, base, policy=policy, debug=debug))
        if parts.scheme != "https":
            raise GraphError(f"--graph-url {base} must use https (only loopback addresses may use http)").as_usage()
        if not tenant:
            raise AuthError("no tenant given: pass --tenant (a tenant id or domain) or set PROVISION_TENANT.").as_usage()
        choice = select_credential(auth, env, tenant)
        contain_azure_logging(env, debug)
        if debug:
            print(choice.describe(), file=sys.stderr)
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )

        authority = authority_for(base, env)
        credential = choice.build(authority, **dict(credential_options or {}))
        provider = AzureIdentityAuthenticationProvider(
            credential, scopes=[graph_scope(base)], allowed_hosts=[parts.hostname]
        )
        client = make_client(base, auth_provider=provider)
        transport = Transport(
            client,
            base,
            policy=policy,
            debug=debug,
            credential=credential,
            choice=choice,
            authority=authority,
        )
        return TenantConnection(loop, transport)
    except BaseException:
        loop.close()
        raise


def _emulator(
    path: str, loop: asyncio.AbstractEventLoop, debug: bool, policy: RetryPolicy | None
) -> TenantConnection:
    from provisioner.emulator.local import LocalTenant

    if not path:
        raise GraphError("--tenant emulator:PATH needs a PATH (the emulator state file)")
    local = LocalTenant(path)
    if local.created:
        print(f"note: created the demo tenant at {path}", file=sys.stderr)
    return open_app(local.app, debug=debug, policy=policy, local=local, loop=loop)


def open_app(
    app: Any,
    *,
    debug: bool = False,
    policy: RetryPolicy | None = None,
    local: Any = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> TenantConnection:
    """A connection to an ASGI app in process (the emulator, possibly with faults), at http://localhost/v1.0."""
    import httpx

    from provisioner.graph.transport import Transport, make_client

    loop = loop or asyncio.new_event_loop()
    client = make_client(EMULATOR_BASE, transport=httpx.ASGITransport(app=app))
    return TenantConnection(loop, Transport(client, EMULATOR_BASE, policy=policy, debug=debug), local)
