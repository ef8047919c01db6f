"""`provision schema`: print the manifest JSON Schema (generated from the pydantic model) to stdout."""

from __future__ import annotations

import sys


def run() -> int:
    from provisioner.manifest.model import json_schema_text

    sys.stdout.write(json_schema_text())
    return 0
