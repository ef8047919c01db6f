"""Graph access: the only package that imports msgraph-sdk, azure-identity and httpx.

    connect(tenant, graph_url=None, auth="auto", debug=False) -> TenantConnection   (connection.py)
        .tenant_info() .read_skus() .read(upns, managed_sku_ids) .read_users_by_id(ids)
        .read_users_by_upn(upns) .execute(actions, parallelism=4, on_outcome=None) -> [ActionOutcome]
    select_credential(mode, env, tenant) -> CredentialChoice                          (auth.py, pure)

Importing this package is cheap: the SDK is imported only when `connect()` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provisioner.graph.auth import CredentialChoice, select_credential
from provisioner.graph.outcome import ActionOutcome

if TYPE_CHECKING:
    from provisioner.graph.connection import TenantConnection, connect


def __getattr__(name: str) -> Any:
    if name in ("connect", "TenantConnection", "is_loopback"):
        from provisioner.graph import connection

        return getattr(connection, name)
    raise AttributeError(name)


__all__ = ["ActionOutcome", "CredentialChoice", "TenantConnection", "connect", "select_credential"]
