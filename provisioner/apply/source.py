"""Where apply's plan comes from when it is given manifests: load them, read the tenant, plan. Reads Graph via `conn`.

The same steps as `provision plan`; kept here as one small function so apply does not depend on the plan
command's module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provisioner.model.plan import Plan


def plan_from_manifests(paths: Sequence[Path], conn: Any, catalog_override: Path | None = None) -> Plan:
    """Load the manifests, read the users they name (and every holder of a managed SKU), and plan."""
    from provisioner.catalog import load_catalog
    from provisioner.manifest import load_desired
    from provisioner.planner import plan as make_plan

    catalog = load_catalog(catalog_override)
    desired = load_desired(list(paths), catalog=catalog)
    if catalog_override is None and desired.catalog_path:  # a manifest may name its own catalog override
        catalog = load_catalog(desired.catalog_path)
    skus = conn.read_skus()
    managed = sorted(
        s.sku_id
        for s in skus
        if catalog.classify_sku(s.part_number, [p.name for p in s.service_plans]) is not None
    )
    observed = conn.read([u.upn for u in desired.users], managed, include_all_managed=True)
    return make_plan(desired, observed, catalog)
