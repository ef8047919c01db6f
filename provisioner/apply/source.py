"""Where apply's plan comes from when it is given manifests: load them, read the tenant, plan. Reads Graph via `conn`.

The same steps as `provision plan` (provisioner/cli/plan.py), on an already open connection so that apply
plans and executes through one session. Notes go to stderr like plan's.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionerError
from provisioner.model.observed import Observed, Sku
from provisioner.model.plan import Plan


def plan_from_manifests(
    paths: Sequence[Path], conn: Any, catalog_override: Path | None = None, *, quiet: bool = False
) -> Plan:
    """Load the manifests, read the users they name (and every holder of a managed SKU), and plan."""
    from provisioner.catalog import load_catalog
    from provisioner.manifest import load_desired
    from provisioner.planner import plan as make_plan

    # An explicit --catalog wins; else a manifest may name its own override (`catalog:`).
    if catalog_override is not None:
        catalog = load_catalog(catalog_override)
        desired = load_desired([str(p) for p in paths], catalog=catalog)
    else:
        desired = load_desired([str(p) for p in paths])
        catalog = load_catalog(desired.catalog_path) if desired.catalog_path else load_catalog()
    pinned = {
        u.calling_plan[4:].upper()
        for u in desired.users
        if u.calling_plan and u.calling_plan.startswith("sku:")
    }

    def managed(skus: tuple[Sku, ...]) -> list[str]:
        """Managed SKU ids: the catalog's classes, plus SKUs named by `callingPlan: sku:<part>`."""
        return sorted(
            s.sku_id
            for s in skus
            if catalog.classify_sku(s.part_number, [p.name for p in s.service_plans]) is not None
            or s.part_number.upper() in pinned
        )

    observed = conn.read([u.upn for u in desired.users], managed_sku_ids=managed, include_all_managed=True)
    if not quiet:
        print(
            f"read {len(desired.users)} users from {len(desired.files)} manifest(s); tenant "
            f"{observed.tenant.display_name}: {len(observed.users)} users, {len(observed.skus)} SKUs",
            file=sys.stderr,
        )
    return make_plan(desired, observed, catalog, group_names=_group_names(conn, observed))


def _group_names(conn: Any, observed: Observed) -> dict[str, str]:
    """Group display names for inherited-license messages (ids are shown when they cannot be read)."""
    names = dict(getattr(observed, "groups", None) or {})
    ids = sorted(
        {a.by_group for u in observed.users.values() for a in u.assignments if a.by_group} - set(names)
    )
    reader = getattr(conn, "group_names", None)
    if not ids or reader is None:
        return names
    try:
        names.update(dict(reader(ids)))
    except ProvisionerError as exc:
        print(
            f"note: group names not read ({str(exc).splitlines()[0]}); messages name group ids.",
            file=sys.stderr,
        )
    return names
