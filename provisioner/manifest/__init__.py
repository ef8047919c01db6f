"""Manifests (CONTRACT §2): read safely, checked against the Calling Plan catalog, merged into `Desired`.

    load_desired(paths, catalog=None) -> Desired          raises ManifestError listing every problem
    dump_manifest(users, tenant=, policy=, defaults=, comments=) -> str   Desired users back to YAML
    json_schema() / json_schema_text()                      the manifest JSON Schema (from the pydantic model)
"""

from __future__ import annotations

from provisioner.manifest.dump import dump_manifest
from provisioner.manifest.loader import MANIFEST_SUFFIXES, find_files, load_desired
from provisioner.manifest.model import API_VERSION, KIND, json_schema, json_schema_text

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
