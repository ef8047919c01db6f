"""Manifests (CONTRACT §2): read safely, checked against the Calling Plan catalog, merged into `Desired`.

    load_desired(paths, catalog=None) -> Desired          raises ManifestError listing every problem
    dump_manifest(users, tenant=, policy=, defaults=, comments=) -> str   Desired users back to YAML
    json_schema() / json_schema_text()                      the manifest JSON Schema (from the pydantic model)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from provisioner.model.desired import API_VERSION, KIND

if TYPE_CHECKING:
    from provisioner.manifest.dump import dump_manifest
    from provisioner.manifest.files import MANIFEST_SUFFIXES, find_files
    from provisioner.manifest.loader import load_desired

# Imported when first used: the loader and the dumper import PyYAML and compile their patterns (~60 ms), which
# `plan` does without when a forked child loads its manifests (background.py).
_LAZY = {"dump_manifest": "dump", "MANIFEST_SUFFIXES": "files", "find_files": "files", "load_desired": "loader"}


if not TYPE_CHECKING:  # mypy sees the imports above, so a misspelt name is still an error there

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)



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
