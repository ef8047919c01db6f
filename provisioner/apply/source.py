"""Where apply's plan comes from when it is given manifests: load them, read the tenant, plan. Reads Graph via `conn`.

The same steps as `provision plan` (provisioner/cli/plan.py), on an already open connection so that apply
plans and executes through one session. Notes go to stderr like plan's.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provisioner.model.plan import Plan


def plan_from_manifests(
    paths: Sequence[Path], conn: Any, catalog_override: Path | None = None, *, quiet: bool = False
) -> Plan:
    """Load the manifests, read the users they name (and every holder of a managed SKU), and plan."""
    from provisioner.pipeline import catalog_file, load_inputs, make_plan, read_tenant

    desired, catalog = load_inputs(paths, catalog_override)
    observed = read_tenant(conn, desired, catalog)
    if not quiet:
        print(
            f"read {_n(len(desired.users), 'user')} from {_n(len(desired.files), 'manifest')}; tenant "
            f"{observed.tenant.display_name}: {len(observed.users)} users, {len(observed.skus)} SKUs",
            file=sys.stderr,
        )
    return make_plan(conn, desired, observed, catalog, catalog_path=catalog_file(desired, catalog_override))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
