"""`provision validate PATH...`: offline schema and catalog checks of manifests. Prints a summary to stderr.

Success prints `ok: N users in M files` and returns 0. Problems raise `ManifestError` (every issue
`FILE:LINE: what — what to do`) or `CatalogError` (a bad `--catalog` file); the CLI prints them as
`error: ...` and exits 1 (a traceback only with `--debug`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def run(paths: Sequence[Path | str], catalog: Path | str | None = None, debug: bool = False) -> int:
    from provisioner.catalog import load_catalog
    from provisioner.manifest import load_desired

    cat = load_catalog(catalog) if catalog is not None else None
    desired = load_desired(list(paths), catalog=cat)
    n, m = len(desired.users), len(desired.files)
    print(f"ok: {n:,} user{'s' if n != 1 else ''} in {m} file{'s' if m != 1 else ''}", file=sys.stderr)
    return 0
