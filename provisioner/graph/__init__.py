"""Graph access: the only package that imports msgraph-sdk, azure-identity and httpx. Importing it is cheap:
the SDK is loaded only when `connect()` is called.

    connect(tenant, graph_url=None, auth="auto", debug=False) -> TenantConnection      connection.py
        .tenant_info() .read_skus()
        .read(upns, managed_sku_ids, include_all_managed=True, count_pairs_for=None, count_countries=()) -> Observed
            (without include_all_managed: the named users plus Calling Plan holder counts per country)
        .read_users_by_id(ids) .read_users_by_upn(upns) .read_stale_inputs(ids) -> (tenant, users, skus)
        .execute(actions, parallelism=4, on_outcome=None) -> [ActionOutcome]          outcome.py
    select_credential(mode, env, tenant) -> CredentialChoice                            auth.py (pure)

Inside: reader.py / writer.py (async, through transport.py: the SDK's adapter and middleware, raw bytes
parsed with orjson by parse.py), strategy.py (read cost model), schedule.py (write batches), retry.py
(the one retry layer), failures.py (errors in plain words), pages.py (a full scan's pages decoded in a
forked child), lean.py (httpx without its CLI). The pure modules import no SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provisioner.graph.auth import CredentialChoice, select_credential
from provisioner.graph.lean import skip_httpx_cli
from provisioner.graph.outcome import ActionOutcome

# The SDK is imported through this package only, so this runs before httpx is first imported: its CLI
# (click, rich, pygments: ~0.06-0.09 s) is then never loaded (lean.py).
skip_httpx_cli()

if TYPE_CHECKING:
    from provisioner.graph.connection import TenantConnection, connect, is_loopback


def preload() -> None:
    """Import what connect(), reading and planning will (~0.3 s, the SDK mostly), e.g. while manifests load."""
    import httpcore  # noqa: F401  (httpx imports it only when the client is made: ~0.05 s of connect())

    import provisioner.graph.reader
    import provisioner.graph.transport
    import provisioner.planner  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in ("connect", "TenantConnection", "is_loopback"):
        from provisioner.graph import connection

        return getattr(connection, name)
    raise AttributeError(name)


__all__ = [
    "ActionOutcome",
    "CredentialChoice",
    "TenantConnection",
    "connect",
    "is_loopback",
    "preload",
    "select_credential",
]
