"""`provision export`: turn a tenant's current voice licensing into a manifest that plans to no changes.

`build_export` (pure) decides the entries from an Observed snapshot and the catalog; `render_manifest` and
`split_by_country` (pure) write them as YAML. Reading the tenant and writing files is the CLI's job.
"""

from __future__ import annotations

from provisioner.export.build import (
    Export,
    ExportEntry,
    GroupOnlyUser,
    build_export,
    classify,
    managed_sku_ids,
)
from provisioner.export.render import NO_LOCATION_FILE, render_manifest, scalar, split_by_country

__all__ = [
    "NO_LOCATION_FILE",
    "Export",
    "ExportEntry",
    "GroupOnlyUser",
    "build_export",
    "classify",
    "managed_sku_ids",
    "render_manifest",
    "scalar",
    "split_by_country",
]
