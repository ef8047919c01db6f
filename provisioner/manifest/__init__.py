"""Manifests (CONTRACT §2): read safely, checked against the Calling Plan catalog, merged into `Desired`.

    load_desired(paths, catalog=None) -> Desired          raises ManifestError listing every problem
    dump_manifest(users, tenant=, policy=, defaults=, comments=) -> str   Desired users back to YAML
    json_schema() / json_schema_text()                      the manifest JSON Schema (from the pydantic model)
"""

from __future__ import annotations

from typing import Any

from provisioner.manifest.dump import dump_manifest
from provisioner.manifest.loader import MANIFEST_SUFFIXES, find_files, load_desired
from provisioner.model.desired import API_VERSION, KIND


# The schema needs pydantic (about 80 ms to import); loading and validating manifests do not, so it is
# imported only when asked for.
def json_schema() -> dict[str, Any]:
    from provisioner.manifest.model import json_schema as build

    return build()


def json_schema_text() -> str:
    from provisioner.manifest.model import json_schema_text as build

    return build()

__all__ = [
    "API_VERSION",
    "KIND",
    "MANIFEST_SUFFIXES",
    "dump_manifest",
    "find_files",
    "json_schema",
    "json_schema_text",
    "load_desired",
]
